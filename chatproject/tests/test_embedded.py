"""The run command's mode: one process, no services, every role embedded."""

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.common import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("DATABASE_URL", "MONGO_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "MONGO_DB_NAME")


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k not in BACKENDS}
    env["CHAT_STATE_DIR"] = str(tmp_path_factory.mktemp("embedded"))
    for command in (["migrate", "-v0"], ["generate_keys"], ["seed"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60)
        yield port
    finally:
        server.terminate()
        server.wait(15)


class Session:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.cookie = ""

    def call(self, method, path, body=None):
        headers = {"Content-Type": "application/json", "Cookie": self.cookie}
        self.conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = self.conn.getresponse()
        data = json.loads(response.read())
        cookie = response.getheader("Set-Cookie")
        if cookie and cookie.startswith("jwt_token="):
            self.cookie = cookie.split(";")[0]
        return response.status, data


def test_the_embedded_system_serves_the_whole_flow(embedded_server):
    alice, bob = Session(embedded_server), Session(embedded_server)
    assert alice.call("POST", "/auth/login", {"username": "user1", "password": "123"})[0] == 200
    assert bob.call("POST", "/auth/login", {"username": "user2", "password": "1234"})[0] == 200

    status, ready = alice.call("GET", "/readyz")
    assert status == 200
    assert {name: check["backend"] for name, check in ready["checks"].items()} == {
        "database": "sqlite",
        "mongo": "embedded",
        "redis": "embedded",
        "kafka": "embedded",
    }

    status, created = alice.call("POST", "/command/room", {"roomName": "Embedded", "targetCustomerIds": [2]})
    assert status == 200
    room_id = created["data"]
    status, sent = alice.call("POST", "/command/message", {"roomId": room_id, "content": "hello, embedded"})
    assert status == 200
    message_id = sent["data"]["messageId"]

    status, page = bob.call("GET", f"/query/message/roomId/{room_id}")
    assert [m["messageId"] for m in page["data"]] == [message_id]

    # The in-process relay and projector bring the room view up to date.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rooms = {r["roomId"]: r for r in bob.call("GET", "/query/rooms")[1]["data"]}
        last = rooms.get(room_id, {}).get("lastMessage")
        if last and last["messageId"] == message_id:
            break
        time.sleep(0.1)
    assert rooms[room_id]["lastMessage"]["content"] == "hello, embedded"
    assert rooms[room_id]["unreadStatus"] == {"2": True, "1": False}
    seeded = [r for r in rooms.values() if r["roomName"] == "Direct Chat 1-2"]
    assert seeded, "the seeded room was rebuilt into the in-process store at start"

    assert bob.call("POST", "/command/read", {"roomId": room_id, "messageId": message_id})[0] == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rooms = {r["roomId"]: r for r in bob.call("GET", "/query/rooms")[1]["data"]}
        if rooms[room_id]["unreadStatus"]["2"] is False:
            break
        time.sleep(0.1)
    assert rooms[room_id]["unreadStatus"]["2"] is False

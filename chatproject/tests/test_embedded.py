"""The run command's mode: one process, no services, every role embedded."""

import http.client
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import websocket

from accounts.tests.deactivation_flow import check_deactivation_ends_every_session
from infrastructure.testing.embedded import embedded_server as started
from realtime.tests.stack import RawClient


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory):
    with started(tmp_path_factory.mktemp("embedded")) as server:
        yield server


class Session:
    def __init__(self, server):
        # Longer than SQLite's busy timeout: a send that waits for the write lock is not a failure.
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
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


SENDERS = 8
SENDS_EACH = 40


def _logged_in(server, n):
    """A client of its own, as user1 or user2 by turns."""
    session = Session(server)
    username, password = ("user1", "123") if n % 2 == 0 else ("user2", "1234")
    assert session.call("POST", "/auth/login", {"username": username, "password": password})[0] == 200
    return session


def _every_message(session, room_id):
    """The room's messages, oldest first, read page by page through the query API."""
    status, page = session.call("GET", f"/query/message/roomId/{room_id}")
    messages = []
    while status == 200 and page["data"]:
        messages.extend(page["data"])
        oldest = min(m["messageId"] for m in page["data"])
        status, page = session.call("GET", f"/query/message/roomId/{room_id}/index/{oldest}")
    assert status == 200, page
    return sorted(messages, key=lambda m: m["messageId"])


def test_it_accepts_every_send_of_concurrent_clients_on_the_sqlite_file(embedded_server):
    owner = _logged_in(embedded_server, 0)
    status, created = owner.call("POST", "/command/room", {"roomName": "Busy", "targetCustomerIds": [2]})
    assert status == 200
    room_id = created["data"]
    senders = [_logged_in(embedded_server, n) for n in range(SENDERS)]
    start = threading.Barrier(SENDERS)

    def send_all(n):
        start.wait()
        body = {"roomId": room_id}
        return [
            senders[n].call("POST", "/command/message", {**body, "content": f"sender {n} message {i}"})
            for i in range(SENDS_EACH)
        ]

    with ThreadPoolExecutor(SENDERS) as pool:
        answers = [answer for sent in pool.map(send_all, range(SENDERS)) for answer in sent]

    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: SENDERS * SENDS_EACH}, f"{statuses}\n{embedded_server.log_tail()}"
    contents = [m["content"] for m in _every_message(owner, room_id)]
    assert Counter(contents) == Counter(f"sender {n} message {i}" for n in range(SENDERS) for i in range(SENDS_EACH))
    for n in range(SENDERS):
        mine = [c for c in contents if c.startswith(f"sender {n} ")]
        assert mine == [f"sender {n} message {i}" for i in range(SENDS_EACH)], "each sender's messages keep their order"


def test_deactivating_a_customer_in_the_admin_ends_their_sessions_on_the_embedded_server(embedded_server):
    check_deactivation_ends_every_session(f"http://127.0.0.1:{embedded_server.port}", embedded_server.manage)


@pytest.mark.parametrize("path", ["/ws/chat", "/ws/chat/000/crosssite/websocket"], ids=["stomp", "sockjs"])
def test_a_page_of_another_site_cannot_open_a_socket_on_the_embedded_server(embedded_server, path):
    person = Session(embedded_server)
    assert person.call("POST", "/auth/login", {"username": "user1", "password": "123"})[0] == 200
    token = person.cookie.removeprefix("jwt_token=")
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        RawClient(embedded_server.port, cookie=token, path=path, origin="http://evil.example")
    assert refused.value.status_code == 403, "refused before the upgrade: no socket, so no CONNECTED"

    own_page = RawClient(embedded_server.port, cookie=token, origin=f"http://127.0.0.1:{embedded_server.port}")
    own_page.send("CONNECT", accept_version="1.2")
    assert own_page.receive().command == "CONNECTED"


@pytest.mark.parametrize(
    "path", ["message/roomId/{}", "message/roomId/{}/index/9", "readMarkers/roomId/{}", "onlineStatus/roomId/{}"]
)
def test_a_room_id_no_bigint_holds_names_no_room_on_the_sqlite_file(embedded_server, path):
    person = Session(embedded_server)
    assert person.call("POST", "/auth/login", {"username": "user1", "password": "123"})[0] == 200
    status, answer = person.call("GET", "/query/" + path.format(2**63))
    assert status == 403
    assert answer["message"] == f"Forbidden: Access Denied: Customer 1 is not a participant of Room {2**63}"


def test_edits_reactions_deletes_and_search_work_embedded(embedded_server):
    from urllib.parse import quote

    alice, bob = Session(embedded_server), Session(embedded_server)
    alice.call("POST", "/auth/login", {"username": "user1", "password": "123"})
    bob.call("POST", "/auth/login", {"username": "user2", "password": "1234"})
    room_id = alice.call("POST", "/command/room", {"roomName": "Changes", "targetCustomerIds": [2]})[1]["data"]
    send = {"roomId": room_id, "content": "Tiếng Việt draft"}
    kept = alice.call("POST", "/command/message", send)[1]["data"]["messageId"]
    gone = alice.call("POST", "/command/message", {"roomId": room_id, "content": "draft to delete"})[1]["data"]
    gone = gone["messageId"]

    assert alice.call("PATCH", f"/command/message/{kept}", {"content": "Tiếng Việt final"})[0] == 200
    assert bob.call("PUT", f"/command/message/{kept}/reactions/{quote('👍')}")[0] == 200
    assert alice.call("DELETE", f"/command/message/{gone}")[0] == 200
    assert bob.call("PATCH", f"/command/message/{kept}", {"content": "not mine"})[0] == 403

    status, page = bob.call("GET", f"/query/message/roomId/{room_id}")
    assert status == 200
    by_id = {m["messageId"]: m for m in page["data"]}
    assert (by_id[kept]["content"], by_id[kept]["reactions"]) == (
        "Tiếng Việt final",
        [{"emoji": "👍", "customerIds": [2]}],
    )
    assert (by_id[gone]["content"], by_id[gone]["deleted"]) == ("", True)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = bob.call("GET", "/query/search?q=tieng%20viet")[1]["data"]
        if found:
            break
        time.sleep(0.1)
    assert [(m["messageId"], m["roomName"]) for m in found] == [(kept, "Changes")]
    assert bob.call("GET", "/query/search?q=draft")[1]["data"] == []

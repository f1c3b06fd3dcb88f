"""The local production-like run: what a user does, through nginx, against the real services."""

from __future__ import annotations

import http.client
import json
import random
import select
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from email.message import Message
from http.cookies import SimpleCookie
from typing import Any

import pytest
import websocket
from playwright.sync_api import expect

from accounts.seed import SEED_CUSTOMERS
from accounts.tests.deactivation_flow import check_deactivation_ends_every_session
from deploy.tests.prod_run import ROOT, ProdRun
from realtime.stomp import Frame, FrameParser, encode
from realtime.tests.sockjs_http import XhrSession
from realtime.tests.stack import NODE_CLIENT, read_events
from webui.tests.browser import WAIT_MS, Person, launched_chromium

# Starting the run (migrations, six processes, consumer groups) takes longer than a test.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOM = 1  # the seeded room of user1 and user2
FAILED_LOGINS_PER_ADDRESS = 3
PASSWORDS = {username: password for _, username, password, *_ in SEED_CUSTOMERS}


@pytest.fixture(scope="module")
def prod(kafka_bootstrap, redis_url, mongo_url):
    run = ProdRun(LOGIN_FAILURES_PER_ADDRESS=str(FAILED_LOGINS_PER_ADDRESS)).start()
    yield run
    run.stop()


@dataclass
class Answer:
    status: int
    headers: Message  # names are case-insensitive, as in HTTP (granian sends them in lower case)
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(url: str, body: object = None, token: str | None = None, **headers: str) -> Answer:
    """One HTTP request; 4xx and 5xx are answers too."""
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Cookie", f"jwt_token={token}")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


def login(prod: ProdRun, username: str) -> str:
    answer = call(f"{prod.base_url}/auth/login", {"username": username, "password": PASSWORDS[username]})
    assert answer.status == 200, answer.body
    return SimpleCookie(answer.headers["Set-Cookie"])["jwt_token"].value


def send_message(prod: ProdRun, token: str, content: str) -> int:
    answer = call(f"{prod.base_url}/command/message", {"roomId": ROOM, "content": content}, token)
    assert answer.status == 200, answer.body
    return int(answer.json()["data"]["messageId"])


class StompOverNginx:
    """A raw WebSocket through nginx, authenticated by the jwt_token cookie of the handshake."""

    def __init__(self, prod: ProdRun, token: str) -> None:
        url = prod.base_url.replace("http://", "ws://") + "/ws/chat"
        self.ws = websocket.create_connection(url, header=[f"Cookie: jwt_token={token}"], timeout=15)
        self.parser = FrameParser()

    def send(self, command: str, **headers: str) -> None:
        self.ws.send(encode(Frame(command, tuple(headers.items()), b"")).decode())

    def receive(self) -> Frame:
        while True:
            for frame in self.parser.feed(self.ws.recv()):
                if frame is not None:
                    return frame


def test_nginx_serves_a_ready_system_on_the_real_services(prod):
    answer = call(f"{prod.base_url}/readyz")
    assert answer.status == 200
    backends = {name: check["backend"] for name, check in answer.json()["checks"].items()}
    assert backends == {"database": "postgresql", "mongo": "mongodb", "redis": "redis", "kafka": "kafka"}


def test_every_process_of_the_run_is_up(prod):
    lines = prod.script("status").splitlines()
    assert [line.split()[:2] for line in lines] == [
        [name, "running"] for name in ("api", "web-1", "web-2", "relay", "projector", "pusher", "nginx")
    ], prod.log_tails()
    for port in (prod.api_port, *prod.web_ports):
        assert call(f"http://127.0.0.1:{port}/healthz").status == 200


def test_a_message_sent_over_rest_arrives_over_stomp_and_in_the_query_api(prod):
    sender, reader = login(prod, "user1"), login(prod, "user2")
    client = StompOverNginx(prod, reader)
    client.send("CONNECT", **{"accept-version": "1.2", "host": "chat"})
    assert client.receive().command == "CONNECTED"
    client.send("SUBSCRIBE", id="0", destination=f"/topic/message/roomId/{ROOM}", receipt="subscribed")
    assert client.receive().command == "RECEIPT"

    content = f"through nginx {uuid.uuid4().hex[:6]}"
    message_id = send_message(prod, sender, content)

    frame = client.receive()
    assert frame.command == "MESSAGE"
    assert (json.loads(frame.body)["messageId"], json.loads(frame.body)["content"]) == (message_id, content)
    page = call(f"{prod.base_url}/query/message/roomId/{ROOM}", token=reader)
    assert page.status == 200
    assert (page.json()["data"][0]["messageId"], page.json()["data"][0]["content"]) == (message_id, content)


@pytest.mark.parametrize("transports", ["websocket", "xhr-streaming", "xhr-polling", "eventsource"])
def test_the_reference_browser_client_gets_messages_over_sockjs_through_nginx(prod, transports):
    sender, reader = login(prod, "user1"), login(prod, "user2")
    # As the reference's page opens it, from http://localhost:5500 (a listed origin).
    command = ["node", str(NODE_CLIENT), prod.base_url, reader, f"/topic/message/roomId/{ROOM}"]
    command += ["--origin", "http://localhost:5500", "--transports", transports]
    client = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert client.stdout is not None
    try:
        assert [e["event"] for e in read_events(client, "subscribed")] == ["connected", "subscribed"]
        # stomp.js asks no receipt for its SUBSCRIBE: send until one message arrives, so a message
        # sent before the server registered the subscription cannot make the test flaky.
        sent: list[str] = []
        while not select.select([client.stdout], [], [], 0.5)[0]:
            assert len(sent) < 20, "no message arrived over SockJS"
            sent.append(f"over sockjs {uuid.uuid4().hex[:6]}")
            send_message(prod, sender, sent[-1])
        event = json.loads(client.stdout.readline())
        assert event["event"] == "message"
        assert event["body"]["content"] in sent
    finally:
        client.kill()
        client.communicate()


def test_every_request_of_a_polling_session_reaches_the_web_process_that_holds_it(prod):
    # Two web processes behind nginx: were the requests of one session spread between them,
    # most of these sessions would lose their xhr_send or their poll to the other process.
    token = login(prod, "user2")
    for _ in range(8):
        client = XhrSession(prod.base_url)
        assert client.connect(token).startswith("CONNECTED")
        assert client.send("DISCONNECT", receipt="bye").status == 204
        assert client.stomp_frames()[0].startswith("RECEIPT")


def test_two_people_chat_in_the_browser_client_through_nginx(prod):
    room = f"Through nginx {uuid.uuid4().hex[:6]}"
    with launched_chromium() as browser:
        alice = Person(browser.new_context(), prod.base_url).log_in("user1", "123")
        bob = Person(browser.new_context(), prod.base_url).log_in("user2", "1234")
        alice.page.get_by_role("button", name="New room").click()
        alice.page.get_by_label("Find people by phone number or name").fill("0918 765")
        alice.page.get_by_role("button", name=f"Add {SEED_CUSTOMERS[1][3]}").click()
        alice.page.get_by_label("Room name").fill(room)
        alice.page.get_by_role("button", name="Create").click()
        expect(bob.room_button(room)).to_be_visible(timeout=WAIT_MS)
        bob.open_room(room)
        alice.send("Hello through nginx")
        expect(bob.messages).to_have_text(["Hello through nginx"], timeout=WAIT_MS)
        bob.send("Received, over the WebSocket nginx upgraded")
        conversation = ["Hello through nginx", "Received, over the WebSocket nginx upgraded"]
        expect(alice.messages).to_have_text(conversation, timeout=WAIT_MS)
        alice.shot("conversation-through-nginx")
        assert alice.errors == bob.errors == []


def test_sockjs_info_answers_through_nginx_with_credentialed_cors(prod):
    origin = "http://localhost:5500"
    answer = call(f"{prod.base_url}/ws/chat/info", Origin=origin)
    assert answer.status == 200
    assert answer.json()["websocket"] is True
    assert answer.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("path", ["/ws/chat", "/ws/chat/000/crosssite/websocket"], ids=["stomp", "sockjs"])
def test_a_page_of_another_site_cannot_open_a_socket_through_nginx(prod, path):
    url = prod.base_url.replace("http://", "ws://") + path
    cookie = f"Cookie: jwt_token={login(prod, 'user2')}"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, header=[cookie], origin="http://evil.example", timeout=15)
    assert refused.value.status_code == 403
    # The same handshake from the page nginx serves (websocket-client's default Origin) is upgraded.
    websocket.create_connection(url, header=[cookie], timeout=15).close()


def login_from(prod: ProdRun, source: str, username: str, password: str) -> int:
    """Log in from another loopback address, as a different client machine would."""
    connection = http.client.HTTPConnection("127.0.0.1", prod.port, timeout=15, source_address=(source, 0))
    body = json.dumps({"username": username, "password": password})
    connection.request("POST", "/auth/login", body, {"Content-Type": "application/json"})
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_failed_login_throttle_counts_each_client_behind_nginx_by_its_own_address(prod):
    guesser, other = (f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{n}" for n in (7, 8))
    statuses = [
        login_from(prod, guesser, f"nobody-{uuid.uuid4().hex[:8]}", "wrong")
        for _ in range(FAILED_LOGINS_PER_ADDRESS + 1)
    ]
    assert statuses == [401] * FAILED_LOGINS_PER_ADDRESS + [429]
    # Every request reached the web role from nginx's address; the client's came in X-Forwarded-For.
    assert login_from(prod, other, "user1", PASSWORDS["user1"]) == 200


def test_a_request_without_a_session_gets_the_apps_json_answer(prod):
    answer = call(f"{prod.base_url}/query/rooms")
    assert answer.status == 401
    assert answer.headers["Content-Type"].startswith("application/json")


def environment_of(prod: ProdRun) -> dict[str, str]:
    """The environment the run's processes have (`scripts/prod env`)."""
    return prod.environment()


def run_healthcheck(prod: ProdRun, role: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    """`python -m deploy.healthcheck ROLE`, as a container runs it, in the environment of the run."""
    env = environment_of(prod)
    env["CHAT_WEB_PORT"] = str(prod.web_ports[0])
    env["CHAT_INSTANCE_NAME"] = role  # the name scripts/prod gave the role's process, as its host's name in a container
    env.update(overrides)
    command = [sys.executable, "-m", "deploy.healthcheck", role]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("role", ["api", "web", "relay", "projector", "pusher"])
def test_the_container_healthcheck_of_each_role_passes_on_the_running_system(prod, role):
    result = run_healthcheck(prod, role, CHAT_WEB_PORT=str(prod.api_port if role == "api" else prod.web_ports[0]))
    assert result.returncode == 0, result.stderr


def test_a_consumer_healthcheck_fails_for_a_role_that_never_reported(prod):
    result = run_healthcheck(prod, "pusher", KAFKA_GROUP_PREFIX=f"{prod.namespace}.absent-{uuid.uuid4().hex[:6]}")
    assert result.returncode == 1
    assert "has not reported a status yet" in result.stderr


def test_the_web_healthcheck_fails_when_nothing_answers(prod):
    result = run_healthcheck(prod, "web", CHAT_WEB_PORT="1")
    assert result.returncode == 1
    assert "/readyz unreachable" in result.stderr


def test_deactivating_a_customer_in_the_admin_ends_their_sessions_through_nginx(prod):
    def manage(code: str) -> str:
        command = [sys.executable, "manage.py", "shell", "-c", code]
        run = subprocess.run(command, cwd=ROOT, env=environment_of(prod), capture_output=True, text=True, check=True)
        return run.stdout

    check_deactivation_ends_every_session(prod.base_url, manage)

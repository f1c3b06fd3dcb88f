"""The reference's browser page without WebSockets: in Chromium, two people chat over SockJS's HTTP
transports just as over the WebSocket, against `make run`'s server and through nginx.

The page (sockjs_page/index.html) uses the chat as the reference's page does (contract, section 8)
with the same libraries, sockjs-client 1.x and stomp.js 2.3.3. It is served from an origin of its
own, as the reference's is from :5500: on the same host as the API, so it can read the jwt_token
cookie, and the same site, so the cookie goes with its calls.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from urllib.request import HTTPCookieProcessor, OpenerDirector, Request, build_opener

import pytest
from playwright.sync_api import Browser, expect
from playwright.sync_api import Error as PlaywrightError

from deploy.tests.prod_run import ProdRun
from infrastructure.testing.embedded import embedded_server
from infrastructure.testing.waiting import wait_for
from webui.tests.browser import WAIT_MS, launched_chromium

# A flow waits for 16 steps of WAIT_MS each (160 s) at most, and the first test of a server also
# for its start (`make run`'s: 60 s; nginx's run: 240 s, which fails on its own before 300).
pytestmark = pytest.mark.timeout(300)

HERE = Path(__file__).resolve().parent
LIBRARIES = HERE / "node" / "node_modules"
# All the page's server serves: the page and the two libraries it loads.
PAGE_FILES = {
    "/": (HERE / "sockjs_page" / "index.html", "text/html; charset=utf-8"),
    "/sockjs.min.js": (LIBRARIES / "sockjs-client" / "dist" / "sockjs.min.js", "text/javascript"),
    "/stomp.min.js": (LIBRARIES / "stompjs" / "lib" / "stomp.min.js", "text/javascript"),
}
PASSWORDS = {"user1": "123", "user2": "1234"}
USER1_NAME = "Vũ Thanh Hải"
USER2_NAME = "Huỳnh Đặng Tấn Phát"
LOG_TAIL_LINES = 30

# The page's query parameters, and the transport SockJS must then choose.
TRANSPORTS = [
    pytest.param({}, "websocket", id="websocket"),
    pytest.param({"nows": "1"}, "xhr-streaming", id="no-websocket"),
    pytest.param({"nows": "1", "transports": "xhr-polling"}, "xhr-polling", id="no-websocket-xhr-polling"),
]


@dataclass(frozen=True)
class ChatServer:
    """A server under test: where the page calls it, and its logs, which the test-run plugin shows
    when a test that used it fails."""

    url: str
    logs: Path  # the folder of its processes' logs

    def log_tails(self) -> str:
        parts = []
        for log in sorted(self.logs.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            parts.append(f"== {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)


class PageFiles(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = PAGE_FILES.get(urlsplit(self.path).path)
        if found is None:
            self.send_error(404)
            return
        path, content_type = found
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the page's requests are not what a failure report needs


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """Where the page is served: 127.0.0.1 like the API, on a port of its own."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), PageFiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def for_the_page(page_origin: str) -> dict[str, str]:
    """The settings the reference's page needs: a cookie it can read, and calls from its origin
    (the WebSocket's allowed origins follow CORS's)."""
    return {"JWT_COOKIE_HTTPONLY": "false", "CORS_ALLOWED_ORIGINS": page_origin}


@pytest.fixture(scope="module")
def run_server(page_origin, tmp_path_factory) -> Iterator[ChatServer]:
    """The server `make run` starts, with every backend embedded."""
    state = tmp_path_factory.mktemp("run")
    with embedded_server(state, **for_the_page(page_origin)) as server:
        yield ChatServer(server.url, state)


@pytest.fixture(scope="module")
def nginx_server(page_origin, kafka_bootstrap, redis_url, mongo_url) -> Iterator[ChatServer]:
    """The production-like run: nginx in front of two web processes, on the real services."""
    run = ProdRun(**for_the_page(page_origin)).start()
    yield ChatServer(run.base_url, run.directory / "logs")
    run.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


def call(opener: OpenerDirector, url: str, body: object = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    with opener.open(Request(url, data, {"Content-Type": "application/json"}), timeout=15) as response:
        return json.loads(response.read())


def create_room(api: str, name: str) -> None:
    """A room of user1 and user2, made through the API as user1, once both have it in their room list."""
    people = [build_opener(HTTPCookieProcessor(CookieJar())) for _ in PASSWORDS]
    for person, (username, password) in zip(people, PASSWORDS.items(), strict=True):
        call(person, f"{api}/auth/login", {"username": username, "password": password})
    call(people[0], f"{api}/command/room", {"roomName": name, "targetCustomerIds": [2]})

    def listed() -> bool:
        return all(name in {r["roomName"] for r in call(p, f"{api}/query/rooms")["data"]} for p in people)

    # The room list is a projection, updated after the command; the page reads it once, at login.
    assert wait_for(listed, timeout=WAIT_MS / 1000), f"room {name!r} never reached both room lists"


class Person:
    """One person's window on the page, and what went wrong in it."""

    def __init__(self, browser: Browser, page_url: str) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page_url = page_url
        self.errors: list[str] = []
        self.console_errors: list[str] = []
        self.websockets: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("websocket", lambda socket: self.websockets.append(socket.url))

    def log_in(self, username: str) -> None:
        self.page.goto(self.page_url)
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORDS[username])
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.locator("#chat")).to_be_visible(timeout=WAIT_MS)

    def open_room(self, name: str) -> None:
        self.page.locator(".room", has_text=name).click()
        expect(self.page.locator("#room-name")).to_have_text(name, timeout=WAIT_MS)

    def type(self, text: str) -> None:
        self.page.get_by_label("Message").press_sequentially(text)

    def send(self) -> None:
        self.page.get_by_label("Message").press("Enter")

    @property
    def typing(self):
        return self.page.locator("#typing")

    @property
    def messages(self):
        return self.page.locator(".message .content")

    @property
    def seen_by(self):
        """Under each message, in order, who has read up to it."""
        return self.page.locator(".message .seen")

    def report(self, name: str) -> str:
        return f"{name}'s page errors: {self.errors}, console errors: {self.console_errors}"


@contextlib.contextmanager
def two_people(browser: Browser, page_url: str) -> Iterator[tuple[Person, Person]]:
    """Alice's and Bob's windows; a failure says what went wrong in them (and the test-run plugin
    adds the server's logs, from its fixture's log_tails)."""
    alice, bob = Person(browser, page_url), Person(browser, page_url)
    try:
        yield alice, bob
    except (AssertionError, PlaywrightError) as failure:
        raise AssertionError(f"{failure}\n{alice.report('Alice')}\n{bob.report('Bob')}") from failure
    finally:
        alice.context.close()
        bob.context.close()
    # A request that failed (CORS, a lost session) shows as a console error, even if SockJS recovered.
    assert alice.errors == bob.errors == alice.console_errors == bob.console_errors == []


def chat_in_two_windows(
    browser: Browser, server: ChatServer, page_origin: str, query: dict[str, str], transport: str
) -> None:
    """Log in, then live messages both ways, each with typing seen by the other and "seen by"."""
    room = f"SockJS {transport} {uuid.uuid4().hex[:6]}"
    create_room(server.url, room)
    page_url = f"{page_origin}/?{urlencode({'api': server.url, **query})}"
    with two_people(browser, page_url) as (alice, bob):
        for person, username in ((alice, "user1"), (bob, "user2")):
            person.log_in(username)
            expect(person.page.locator("body")).to_have_attribute("data-transport", transport, timeout=WAIT_MS)
            person.open_room(room)

        # Bob's typing reaches Alice through her last subscription, and only after his session
        # handled his subscriptions (a session handles its frames in order): both are in place.
        bob.type("Hi Alice")
        expect(alice.typing).to_have_text(f"{USER2_NAME} is typing", timeout=WAIT_MS)
        bob.send()
        for person in (alice, bob):
            expect(person.messages).to_have_text(["Hi Alice"], timeout=WAIT_MS)
        expect(alice.typing).to_have_text("", timeout=WAIT_MS)
        expect(bob.seen_by).to_have_text([f"seen by {USER1_NAME}"], timeout=WAIT_MS)

        reply = f"Hello Bob, over {transport}"
        alice.type(reply)
        expect(bob.typing).to_have_text(f"{USER1_NAME} is typing", timeout=WAIT_MS)
        alice.send()
        for person in (alice, bob):
            expect(person.messages).to_have_text(["Hi Alice", reply], timeout=WAIT_MS)
        expect(bob.typing).to_have_text("", timeout=WAIT_MS)
        # Both have read up to the reply (Alice her own too, as the reference's page reads every
        # message it shows), so each one's marker moved under it.
        expect(alice.seen_by).to_have_text(["", f"seen by {USER2_NAME}"], timeout=WAIT_MS)
        expect(bob.seen_by).to_have_text(["", f"seen by {USER1_NAME}"], timeout=WAIT_MS)

        for person in (alice, bob):
            opened = [urlsplit(url).path for url in person.websockets]
            assert len(opened) == (1 if transport == "websocket" else 0), opened


@pytest.mark.parametrize(("query", "transport"), TRANSPORTS)
def test_two_people_chat_on_the_reference_page_against_the_run_server(
    browser, run_server, page_origin, query, transport
):
    chat_in_two_windows(browser, run_server, page_origin, query, transport)


@pytest.mark.integration
@pytest.mark.parametrize(("query", "transport"), TRANSPORTS)
def test_two_people_chat_on_the_reference_page_through_nginx(browser, nginx_server, page_origin, query, transport):
    chat_in_two_windows(browser, nginx_server, page_origin, query, transport)

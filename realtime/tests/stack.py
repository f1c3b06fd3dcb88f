"""A running system for the realtime tests: two daphne web processes, relay, projector, pusher."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import stomp
import websocket
from django.conf import settings

from accounts.tokens import issue_token
from benchmarks.common import free_port, uvicorn_command, wait_for_port
from chat_command.tests.test_relay import _test_database_url
from chatproject import consumers
from realtime.stomp import Frame, FrameParser, encode

ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENT = Path(__file__).resolve().parent / "node" / "sockjs_client.js"


class Stack:
    def __init__(self) -> None:
        self.prefix = f"rt-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DATABASE_URL": _test_database_url(),
            "MONGO_DB_NAME": settings.MONGO_DB_NAME,
            "JWT_PRIVATE_KEY_PATH": str(settings.JWT_PRIVATE_KEY_PATH),
            "JWT_PUBLIC_KEY_PATH": str(settings.JWT_PUBLIC_KEY_PATH),
            "KAFKA_GROUP_PREFIX": self.prefix,
            "KAFKA_AUTO_OFFSET_RESET": "latest",
            "CHAT_EMBEDDED_WORKERS": "false",
            "LOG_LEVEL": "WARNING",
        }
        self.children: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []

    def uvicorn(self) -> int:
        """A web process on uvicorn (websockets), whose sends wait for the socket to drain."""
        port = free_port()
        self._spawn(*uvicorn_command(port))
        wait_for_port(port, timeout=60)
        return port

    def start(self, ports: tuple[int, ...] = ()) -> Stack:
        """Two daphne web processes, on the given ports or on free ones."""
        for port in ports or (free_port(), free_port()):
            self._spawn(
                str(Path(sys.executable).parent / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "chatproject.asgi:application",
            )
            self.ports.append(port)
        self._spawn(sys.executable, "manage.py", "relay_outbox")
        for role in ("projector", "pusher"):
            self._spawn(sys.executable, "manage.py", "consume_events", role)
        for port in self.ports:
            wait_for_port(port, timeout=60)
        deadline = time.monotonic() + 90
        for role in ("projector", "pusher"):
            while not (consumers.read_status(f"{self.prefix}-{role}") or {}).get("assigned"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {role} did not join its group")
                time.sleep(0.2)
        return self

    def _spawn(self, *command: str) -> None:
        log = open(ROOT / ".local" / "logs" / f"test-{Path(command[-1]).name}-{len(self.children)}.log", "wb")  # noqa: SIM115
        self.children.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()


def token_for(customer_id: int, username: str = "user") -> str:
    return issue_token(
        customer_id=customer_id, username=username, full_name=f"Customer {customer_id}", roles="ROLE_USER"
    )


class Collector(stomp.ConnectionListener):
    def __init__(self) -> None:
        self.frames: queue.Queue[tuple[str, dict[str, str], str]] = queue.Queue()
        self.disconnected = False

    def on_message(self, frame: stomp.utils.Frame) -> None:
        self.frames.put(("MESSAGE", dict(frame.headers), frame.body))

    def on_error(self, frame: stomp.utils.Frame) -> None:
        self.frames.put(("ERROR", dict(frame.headers), frame.body))

    def on_disconnected(self) -> None:
        self.disconnected = True

    def next(self, timeout: float = 10.0) -> tuple[str, dict[str, str], str]:
        return self.frames.get(timeout=timeout)

    def bodies(self, count: int, timeout: float = 10.0) -> list[dict[str, object]]:
        return [json.loads(self.next(timeout)[2]) for _ in range(count)]

    def quiet(self, seconds: float) -> bool:
        try:
            self.frames.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


def stomp_client(port: int, customer_id: int) -> tuple[stomp.WSStompConnection, Collector]:
    """stomp.py over a raw WebSocket at /ws/chat, authenticated by the jwt_token CONNECT header."""
    connection = stomp.WSStompConnection([("127.0.0.1", port)], ws_path="/ws/chat", heartbeats=(0, 0))
    collector = Collector()
    connection.set_listener("collector", collector)
    connection.connect(headers={"jwt_token": token_for(customer_id)}, wait=True)
    return connection, collector


class RawClient:
    """A bare WebSocket speaking STOMP through our codec, for protocol edge cases."""

    def __init__(self, port: int, cookie: str | None = None, path: str = "/ws/chat", **options: Any) -> None:
        """`options` go to websocket-client, which sends the server's own Origin unless told otherwise."""
        headers = [f"Cookie: jwt_token={cookie}"] if cookie else []
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", header=headers, timeout=10, **options)
        self.parser = FrameParser()
        self.pending: deque[Frame] = deque()

    def send(self, command: str, body: bytes = b"", **headers: str) -> None:
        """Headers as keywords: accept_version becomes accept-version; jwt_token stays as it is."""
        named = tuple((k if k == "jwt_token" else k.replace("_", "-"), v) for k, v in headers.items())
        self.ws.send(encode(Frame(command, named, body)).decode())

    def receive(self) -> Frame:
        """The next frame; the server may batch several into one WebSocket message."""
        while not self.pending:
            self.pending.extend(f for f in self.parser.feed(self.ws.recv()) if f is not None)
        return self.pending.popleft()

    def closed(self, timeout: float = 5.0) -> bool:
        self.ws.settimeout(timeout)
        try:
            while self.ws.recv():
                pass
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return True
        except websocket.WebSocketTimeoutException:
            return False
        return True


def node_client(
    port: int,
    customer_id: int,
    *destinations: str,
    count: int = 1,
    sends: tuple[tuple[str, str], ...] = (),
    origin: str | None = None,
) -> subprocess.Popen[str]:
    """The reference's SockJS client; with `origin`, its handshake says so, as a browser page's would."""
    command = [
        "node",
        str(NODE_CLIENT),
        f"http://127.0.0.1:{port}",
        token_for(customer_id),
        *destinations,
        "--count",
        str(count),
    ]
    if origin:
        command += ["--origin", origin]
    for destination, body in sends:
        command += ["--send", destination, body]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_events(process: subprocess.Popen[str], until: str, timeout: float = 20.0) -> list[dict[str, object]]:
    events = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        events.append(json.loads(line))
        if events[-1]["event"] == until:
            break
    return events

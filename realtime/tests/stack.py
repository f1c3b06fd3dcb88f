"""A running system for the realtime tests (web processes, relay, projector, pusher), and its clients."""

from __future__ import annotations

import json
import os
import queue
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import redis
import stomp
import websocket
from django.conf import settings

from accounts.tokens import issue_token
from benchmarks.common import free_port, uvicorn_command
from infrastructure.messaging import consumers
from infrastructure.testing.children import database_url
from realtime.stomp import Frame, FrameParser, encode

ROOT = Path(__file__).resolve().parents[2]
ASGI = "chatproject.asgi:application"
START_TIMEOUT_S = 60
NODE_CLIENT = Path(__file__).resolve().parent / "node" / "sockjs_client.js"


class Stack:
    """The processes of a running system; each writes its output to a file of its own, shown when a test fails."""

    def __init__(self, redis_url: str | None = None) -> None:
        """`redis_url`: a Redis of the test's own for every process, instead of the shared one."""
        # Under the run's own group prefix (its namespace's), so dropping the namespace ends these groups too.
        self.prefix = f"{settings.KAFKA_GROUP_PREFIX}-rt-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "MONGO_DB_NAME": settings.MONGO_DB_NAME,
            "JWT_PRIVATE_KEY_PATH": str(settings.JWT_PRIVATE_KEY_PATH),
            "JWT_PUBLIC_KEY_PATH": str(settings.JWT_PUBLIC_KEY_PATH),
            "KAFKA_GROUP_PREFIX": self.prefix,
            "KAFKA_AUTO_OFFSET_RESET": "latest",
            "CHAT_EMBEDDED_WORKERS": "false",
            "LOG_LEVEL": "WARNING",
        }
        if redis_url is not None:
            self.env["REDIS_URL"] = redis_url
            self.env["REDIS_CLUSTER"] = "false"  # a test's own Redis is one server, whatever the run's is
        self.redis_url = redis_url
        self.logs = ROOT / ".local" / "logs" / "test-stacks" / self.prefix
        self.children: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.ports: list[int] = []

    def uvicorn(self) -> int:
        """A web process on uvicorn (websockets), whose sends wait for the socket to drain."""
        port = free_port()
        self._spawn(*uvicorn_command(port))
        self._wait_for(partial(port_open, port), f"the web process on port {port}", time.monotonic() + START_TIMEOUT_S)
        return port

    def start(
        self, ports: tuple[int, ...] = (), server: str = "both", roles: tuple[str, ...] = ("projector", "pusher")
    ) -> Stack:
        """Web processes (two, or one per given port) on `server`: daphne (as `make run` serves),
        uvicorn (as production runs it, with the direct send), or both, taking turns from uvicorn
        on the first port; the relay and the consumer `roles`. Returns once they serve."""
        try:
            self._start(ports, server, roles)
        except BaseException:
            self.stop()  # a fixture whose setup failed is not torn down
            raise
        return self

    def _start(self, ports: tuple[int, ...], server: str, roles: tuple[str, ...]) -> None:
        for n, port in enumerate(ports or (free_port(), free_port())):
            if server == "uvicorn" or (server == "both" and n % 2 == 0):
                self._spawn(*uvicorn_command(port))
            else:
                self._spawn(str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), ASGI)
            self.ports.append(port)
        self._spawn(sys.executable, "manage.py", "relay_outbox")
        for role in roles:
            self._spawn(sys.executable, "manage.py", "consume_events", role)
        # One deadline for all: the whole start must fit in a test's timeout (pyproject: 120 s).
        deadline = time.monotonic() + START_TIMEOUT_S
        for port in self.ports:
            self._wait_for(partial(port_open, port), f"the web process on port {port}", deadline)
        for role in roles:
            # With KAFKA_AUTO_OFFSET_RESET=latest, an event published before its partitions are
            # assigned would never reach the role.
            self._wait_for(partial(self._assigned, role), f"the {role} joining its group", deadline)

    def _assigned(self, role: str) -> bool:
        name = f"{self.prefix}-{role}"
        if self.redis_url is None:
            return bool((consumers.read_status(name) or {}).get("assigned"))
        # The role reports its status to the Redis it was given.
        with redis.Redis.from_url(self.redis_url) as client:
            raw = client.get(consumers._status_key(name))
        return bool(raw and json.loads(raw).get("assigned"))

    def _wait_for(self, condition: Callable[[], bool], what: str, deadline: float) -> None:
        while not condition():
            exited = [log.name for child, log in self.children if child.poll() is not None]
            if exited or time.monotonic() > deadline:
                problem = f"{', '.join(exited)} exited" if exited else f"no {what} within {START_TIMEOUT_S} s"
                raise RuntimeError(f"the stack did not start: {problem}\n{self.log_tails()}")
            time.sleep(0.1)

    def _spawn(self, *command: str) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{len(self.children)}-{Path(command[-1]).name.replace(':', '-')}.log"
        with log.open("wb") as output:
            child = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT)
        self.children.append((child, log))

    def log_tails(self, lines: int = 30) -> str:
        """The end of every process's output, with its exit code if it has ended."""
        parts = []
        for child, log in self.children:
            state = "running" if child.poll() is None else f"exited {child.returncode}"
            text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
            parts.append(f"== {log} ({state})\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        for child, _ in self.children:
            child.terminate()
        # uvicorn waits up to 10 s (--timeout-graceful-shutdown) for open sockets to close.
        deadline = time.monotonic() + 15
        for child, _ in self.children:
            try:
                child.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def token_for(customer_id: int, username: str = "user") -> str:
    return issue_token(
        customer_id=customer_id, username=username, full_name=f"Customer {customer_id}", roles="ROLE_USER"
    )


class Collector(stomp.ConnectionListener):
    def __init__(self) -> None:
        self.frames: queue.Queue[tuple[str, dict[str, str], str]] = queue.Queue()
        self.receipts: queue.Queue[str] = queue.Queue()
        self.session = ""  # the server's id of the connection, from CONNECTED
        self.disconnected = False

    def on_connected(self, frame: stomp.utils.Frame) -> None:
        self.session = frame.headers.get("session", "")

    def on_receipt(self, frame: stomp.utils.Frame) -> None:
        self.receipts.put(frame.headers["receipt-id"])

    def on_message(self, frame: stomp.utils.Frame) -> None:
        self.frames.put(("MESSAGE", dict(frame.headers), frame.body))

    def on_error(self, frame: stomp.utils.Frame) -> None:
        self.frames.put(("ERROR", dict(frame.headers), frame.body))

    def on_disconnected(self) -> None:
        self.disconnected = True

    def next(self, timeout: float = 20.0) -> tuple[str, dict[str, str], str]:
        return self.frames.get(timeout=timeout)

    def bodies(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        return [json.loads(self.next(timeout)[2]) for _ in range(count)]


def subscribe(connection: stomp.WSStompConnection, collector: Collector, destination: str, id: str) -> None:
    """SUBSCRIBE, and return once the server's RECEIPT says every push from now on reaches it."""
    receipt = f"{id}-{uuid.uuid4().hex[:6]}"
    connection.subscribe(destination, id=id, headers={"receipt": receipt})
    assert collector.receipts.get(timeout=20) == receipt


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

    def close_code(self, timeout: float = 30.0) -> int | None:
        """Read up to the server's close frame, answer it as a client does, and return its code.

        A reset instead raises: the client would never learn why it was closed.
        """
        self.ws.settimeout(timeout)
        while True:
            opcode, frame = self.ws.recv_data_frame(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:  # recv_data_frame has answered it
                return struct.unpack("!H", frame.data[:2])[0] if len(frame.data) >= 2 else None
            if opcode == websocket.ABNF.OPCODE_TEXT:
                self.pending.extend(f for f in self.parser.feed(frame.data.decode()) if f is not None)

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
    transports: str | None = None,
) -> subprocess.Popen[str]:
    """The reference's SockJS client; with `origin`, its handshake says so, as a browser page's would;
    with `transports` (xhr-streaming, xhr-polling, eventsource), it uses only those."""
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
    if transports:
        command += ["--transports", transports]
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

"""Steady load on a running system, shared by the sustained benchmark and the fault drills.

- `System`: the project's roles as child processes (web, relay, projector, pusher) that can
  be killed and started again on the same port, with the peak memory of each role.
- `Poster`: open-loop `POST /command/message` at a fixed rate across rooms and web ports,
  recording which posts were accepted (200) and under which messageId.
- `Subscriber`: a STOMP client of one room's message topic that reconnects after a lost
  connection with `since-message-id` (the recovery extension) and records every messageId.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

from benchmarks.common import OUT_DIR, ROOT, wait_until
from infrastructure.sockets import readable_now
from realtime.stomp import Frame, FrameParser, encode

logger = logging.getLogger(__name__)

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
# One look into the read store gives up after this long: a server that stopped answering (FerretDB
# 1.x waiting for a PostgreSQL connection) must not hold a drill past its patience.
MONGO_CHECK_S = 10


# --- The roles as child processes --------------------------------------------------------


@dataclass
class Role:
    name: str
    command: list[str]
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    peak_rss_kb: int = 0


class System:
    """Named roles started from one environment; each can be killed and started again."""

    def __init__(self, env: dict[str, str], roles: list[Role]) -> None:
        self.env = env
        self.roles = {role.name: role for role in roles}
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    def start(self, name: str, timeout: float = 60.0) -> None:
        """Start the role; one with a port must listen on it within `timeout` seconds, or this raises."""
        role = self.roles[name]
        path = OUT_DIR / f"{name}.log"
        log = open(path, "ab")  # noqa: SIM115 - the child owns it
        process = role.process = subprocess.Popen(
            role.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        if role.port is None:
            return
        port = role.port
        if not wait_until(lambda: process.poll() is not None or listening(port), timeout, interval=0.1):
            raise RuntimeError(f"{name} did not listen on port {port} within {timeout:g} s (its log: {path})")
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before listening on port {port} (log: {path})")

    def start_all(self, timeout: float = 60.0) -> None:
        for name in self.roles:
            self.start(name, timeout)
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def kill(self, name: str) -> None:
        """SIGKILL the role and everything it forked: no chance to finish anything."""
        process = self.roles[name].process
        assert process is not None
        for pid in reversed(process_tree(process.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()

    def pid(self, name: str) -> int:
        process = self.roles[name].process
        assert process is not None
        return process.pid

    def stop_all(self) -> None:
        self._sampling.set()
        running = [r.process for r in self.roles.values() if r.process is not None and r.process.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()

    def _sample(self) -> None:
        while not self._sampling.wait(1.0):
            for role in self.roles.values():
                if role.process is not None and role.process.poll() is None:
                    role.peak_rss_kb = max(role.peak_rss_kb, tree_rss_kb(role.process.pid))


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def process_tree(pid: int) -> list[int]:
    """The process and its descendants, parents first (from /proc/<pid>/task/*/children)."""
    found, index = [pid], 0
    while index < len(found):
        for task in Path(f"/proc/{found[index]}/task").glob("*"):
            with contextlib.suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
        index += 1
    return found


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and its descendants (granian's workers, for example)."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, IndexError):
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * PAGE_KB
    return total


# --- Open-loop posts ---------------------------------------------------------------------


@dataclass
class Post:
    room_id: int
    sent: float  # perf_counter() just before the request
    status: int  # 0 when no HTTP answer came (refused, reset, timed out)
    message_id: int | None


class Poster:
    """POSTs on a fixed schedule (open loop) until stopped; rooms and ports taken in turn."""

    def __init__(self, ports: list[int], token: str, rooms: list[int], rate: float, threads: int = 16) -> None:
        self.ports, self.token, self.rooms, self.rate = ports, token, rooms, rate
        self.posts: list[Post] = []
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._guarded_work, daemon=True) for _ in range(threads)]
        self._start = 0.0
        self._crashes: list[Exception] = []

    def start(self) -> Poster:
        self._start = time.monotonic() + 0.1
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Post]:
        """Stop posting; raise what broke a posting thread, since its silence would read as a slow server."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        if self._crashes:
            raise RuntimeError(f"{len(self._crashes)} posting threads crashed") from self._crashes[0]
        return self.posts

    def accepted(self) -> list[Post]:
        with self._lock:
            return [p for p in self.posts if p.message_id is not None]

    def _guarded_work(self) -> None:
        try:
            self._work()
        except Exception as crash:
            logger.exception("a posting thread crashed")
            with self._lock:
                self._crashes.append(crash)

    def _work(self) -> None:
        connections: dict[int, http.client.HTTPConnection] = {}
        headers = {"Content-Type": "application/json", "Cookie": f"jwt_token={self.token}"}
        while not self._stop.is_set():
            with self._lock:
                index = self._next
                self._next += 1
            delay = self._start + index / self.rate - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            port = self.ports[index % len(self.ports)]
            room_id = self.rooms[index % len(self.rooms)]
            body = json.dumps({"roomId": room_id, "content": f"load {index}"})
            sent = time.perf_counter()
            conn = connections.get(port)
            if conn is not None and closed_by_server(conn):
                # Servers end keep-alive connections left idle (uvicorn after 5 s): a post sent
                # on one would never reach the server. HTTP clients open a new one instead.
                conn.close()
                conn = None
            if conn is None:
                conn = connections[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("POST", "/command/message", body, headers)
                response = conn.getresponse()
                status, answer = response.status, response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                del connections[port]
                status, answer = 0, b""
            message_id = json.loads(answer)["data"]["messageId"] if status == 200 else None
            with self._lock:
                self.posts.append(Post(room_id, sent, status, message_id))


def closed_by_server(conn: http.client.HTTPConnection) -> bool:
    """Whether the server has ended this idle keep-alive connection (its socket reads EOF)."""
    if conn.sock is None:
        return False  # not connected yet
    # Between requests the server sends nothing: anything to read is its close (or junk).
    return readable_now(conn.sock.fileno())


# --- STOMP subscribers that recover ------------------------------------------------------


@dataclass
class Subscriber:
    """One connection subscribed to one room; reconnects with since-message-id when it is cut."""

    customer_id: int
    room_id: int
    token: str
    ports: list[int]
    received: list[int] = field(default_factory=list)  # messageIds in arrival order, repeats kept
    arrivals: dict[int, float] = field(default_factory=dict)  # first arrival, perf_counter()
    connections: int = 0  # successful subscriptions, the first one included
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    # Why sessions ended other than by the stop: exception type -> count. Unexpected ones are
    # logged, and the subscriber reconnects all the same, so a client bug cannot pose as a loss.
    endings: Counter[str] = field(default_factory=Counter)
    last_error: str = ""  # the latest of them, with its message

    @property
    def reconnects(self) -> int:
        return max(self.connections - 1, 0)

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            port = self.ports[attempt % len(self.ports)]
            # Cut off or refused: it counts as a reconnect once it has subscribed again.
            try:
                await self._session(port, stop)
            except Exception as exc:
                self.endings[type(exc).__name__] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                if not isinstance(exc, (OSError, TimeoutError, WebSocketException, RuntimeError)):
                    logger.exception("subscriber of room %d: unexpected %s; reconnecting", self.room_id, exc)
            attempt += 1
            if not stop.is_set():
                await asyncio.sleep(0.5)

    async def _session(self, port: int, stop: asyncio.Event) -> None:
        async with connect(
            f"ws://127.0.0.1:{port}/ws/chat",
            subprotocols=[Subprotocol("v12.stomp")],
            compression=None,
            ping_interval=5,
            ping_timeout=10,
            open_timeout=20,
            close_timeout=2,
        ) as ws:
            parser = FrameParser()

            async def send(command: str, *headers: tuple[str, str]) -> None:
                await ws.send(encode(Frame(command, headers, b"")).decode())

            await send(
                "CONNECT",
                ("accept-version", "1.2"),
                ("host", "127.0.0.1"),
                ("heart-beat", "0,0"),
                ("jwt_token", self.token),
            )
            since = str(max(self.received, default=0))
            await send(
                "SUBSCRIBE",
                ("id", "sub-0"),
                ("destination", f"/topic/message/roomId/{self.room_id}"),
                ("since-message-id", since),
                ("receipt", "subscribed"),
            )
            reader = asyncio.ensure_future(self._read(ws, parser))
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait([reader, stopper], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
                reader.cancel()
            if reader.done() and not reader.cancelled() and reader.exception():
                raise reader.exception()  # type: ignore[misc]

    async def _read(self, ws: object, parser: FrameParser) -> None:
        async for message in ws:  # type: ignore[attr-defined]
            now = time.perf_counter()
            for frame in parser.feed(message):
                if frame is None:
                    continue
                if frame.command == "MESSAGE":
                    message_id = json.loads(frame.body)["messageId"]
                    self.received.append(message_id)
                    self.arrivals.setdefault(message_id, now)
                elif frame.command == "RECEIPT":
                    self.connections += 1
                    self.subscribed.set()
                elif frame.command == "ERROR":
                    raise RuntimeError(f"ERROR frame: {frame.header('message')}")


class Subscribers:
    """Subscribers on an event loop of their own, in a thread, so the caller can stay synchronous."""

    def __init__(self, subscribers: list[Subscriber]) -> None:
        self.all = subscribers
        self.loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self, timeout: float = 120.0) -> None:
        """Connect and subscribe every subscriber; raise, naming those that could not, after `timeout`."""
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        try:
            started.result(timeout)
        except TimeoutError:
            started.cancel()
            waiting = [s for s in self.all if not s.subscribed.is_set()]
            self.stop()
            errors = Counter(s.last_error or "no answer yet" for s in waiting)
            raise RuntimeError(
                f"{len(waiting)} of {len(self.all)} subscribers did not subscribe within {timeout:g} s;"
                f" their last errors: {dict(errors.most_common(3))}"
            ) from None

    def rooms(self) -> list[int]:
        """The rooms subscribed to, in the subscribers' order."""
        return list(dict.fromkeys(s.room_id for s in self.all))

    async def _start(self) -> None:
        self._stop = asyncio.Event()
        self._tasks = [asyncio.ensure_future(s.run(self._stop)) for s in self.all]
        await asyncio.gather(*(s.subscribed.wait() for s in self.all))

    def stop(self) -> None:
        async def stop() -> None:
            assert self._stop is not None
            self._stop.set()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def missing(self, accepted: dict[int, set[int]]) -> int:
        """Deliveries that did not happen: accepted messages of its room a subscriber lacks."""
        return sum(len(accepted.get(s.room_id, set()) - set(s.received)) for s in self.all)

    def who_missed(self, accepted: dict[int, set[int]]) -> list[str]:
        """One line per subscriber that lacks accepted messages: which, and how its sessions ended."""
        lines = []
        for s in self.all:
            lacking = sorted(accepted.get(s.room_id, set()) - set(s.received))
            if lacking:
                lines.append(
                    f"customer {s.customer_id} room {s.room_id}: lacks {len(lacking)} ({lacking[:10]})"
                    f" of {len(accepted[s.room_id])}; last received {s.received[-3:]}, {s.connections} subscriptions,"
                    f" sessions ended by {dict(s.endings)}"
                )
        return lines

    def duplicates(self) -> int:
        return sum(len(s.received) - len(set(s.received)) for s in self.all)


class Answered(Protocol):
    """A post as both load clients record it (`Post` here, `loadgen.Post`)."""

    @property
    def room_id(self) -> int: ...

    @property
    def message_id(self) -> int | None: ...


def by_room(posts: Sequence[Answered]) -> dict[int, set[int]]:
    """The accepted posts' message ids, by room."""
    rooms: dict[int, set[int]] = {}
    for post in posts:
        if post.message_id is not None:
            rooms.setdefault(post.room_id, set()).add(post.message_id)
    return rooms


# --- Checks ----------------------------------------------------------------------------


class Deliveries(Protocol):
    """Subscribers as the checks see them: Python clients (`Subscribers`) or the compiled ones."""

    def missing(self, accepted: dict[int, set[int]]) -> int: ...


D = TypeVar("D", bound=Deliveries)


class Checks(Generic[D]):
    """What PostgreSQL, MongoDB and the subscribers hold, for the rooms of the drills."""

    def __init__(self, rooms: list[int], subscribers: D) -> None:
        self.rooms = rooms
        self.subscribers = subscribers
        self.in_mongo: set[int] = set()
        self.mongo_error = ""  # why the last look into MongoDB failed, if it did

    def projected(self, accepted: dict[int, set[int]]) -> bool:
        """Whether MongoDB holds every accepted message; what it holds is remembered in `in_mongo`.

        Looked up room by room: FerretDB serves a `roomId` filter from an index but answers
        `_id: {$in: [...]}` by scanning the collection, which took minutes per check at 185,000.
        """
        import pymongo

        from chat_query.store import active_store

        try:
            with pymongo.timeout(MONGO_CHECK_S):
                for room_id, ids in accepted.items():
                    wanted = ids - self.in_mongo
                    if wanted:
                        found = active_store().messages.find(
                            {"roomId": room_id, "_id": {"$gte": min(wanted)}}, {"_id": 1}
                        )
                        self.in_mongo.update(d["_id"] for d in found)
        except Exception as exc:  # noqa: BLE001 - the MongoDB-wire server may still be coming back
            self.mongo_error = f"{type(exc).__name__}: {exc}"[:200]
            return False
        self.mongo_error = ""
        return all(ids <= self.in_mongo for ids in accepted.values())

    def caught_up(self, accepted: dict[int, set[int]]) -> bool:
        return self.subscribers.missing(accepted) == 0 and self.projected(accepted)

    def behind(self, accepted: dict[int, set[int]]) -> str:
        """What is missing of `accepted`, as of the last checks: in MongoDB and at the subscribers."""
        every = set().union(*accepted.values()) if accepted else set()
        parts = [
            f"{len(every - self.in_mongo)} of {len(every)} not in MongoDB",
            f"{self.subscribers.missing(accepted)} deliveries missing at the subscribers",
        ]
        if self.mongo_error:
            parts.append(f"the read store's last answer: {self.mongo_error}")
        return ", ".join(parts)

    def in_postgres(self, ids: set[int]) -> set[int]:
        from chat_command.models import Message

        return set(Message.objects.filter(message_id__in=ids).values_list("message_id", flat=True))

    def projection_equals_rebuild(self, timeout: float) -> bool:
        import pymongo

        from chat_query.store import active_store
        from chat_query.tests.helpers import rebuilt, state_of

        events = logged_events(self.rooms)
        expected = rebuilt(events)

        def equal() -> bool:
            try:
                with pymongo.timeout(MONGO_CHECK_S):
                    return bool(state_of(active_store(fresh=True), self.rooms) == expected)
            except Exception:  # noqa: BLE001 - a store that does not answer does not equal the rebuild
                return False

        return wait_until(equal, timeout, 0.5)


def logged_events(rooms: list[int]) -> list[Any]:
    from chat_command.events import COMMAND_TOPICS
    from chat_command.models import OutboxEvent
    from infrastructure.messaging.events import registered_types

    types = registered_types()
    rows = OutboxEvent.objects.filter(topic__in=COMMAND_TOPICS, payload__roomId__in=rooms).order_by("id")
    return [types[row.type](**row.payload) for row in rows]

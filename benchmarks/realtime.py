"""Realtime path: message latency to a STOMP subscriber, fan-out, frames/s, memory per connection.

Runs the production roles against the real services, in a database and a namespace (`bench-<hex>`:
Kafka topics and groups, Redis keys and channels, dropped at the end) of its own: the api role
for HTTP (granian), the web role for WebSockets (uvicorn with its direct send, decision 0011,
no per-message deflate; `--server daphne` puts daphne in its place), and the event pipeline
(`relay_outbox`, `consume_events projector`, `consume_events pusher`, in consumer groups of
their own that start at the topics' end).
The clients are a tiny STOMP client of this file (our codec, realtime.stomp, over the
`websockets` asyncio client), all in this one asyncio process, with `heart-beat:0,0` and no
WebSocket pings so idle connections stay quiet.

1. End to end: an open-loop client sends `POST /command/message` at 100 messages/s
   (BENCH_RATE) for BENCH_SECONDS (20) to a two-person room; one subscriber of
   `/topic/message/roomId/{id}` on the web server records when each MESSAGE arrives.
   Latency is the arrival minus the moment just before the POST, matched by the messageId
   the POST returned (after 10 warm-up posts). It crosses the outbox, the relay, Kafka, the
   pusher, Redis (channel layer) and the web server; the pusher's CPU share is shown alongside.
   Then the access cut: in 10 rooms of their own, the listener subscribes and the creator
   removes them (`DELETE /command/room/{id}/participants/{customerId}`); the time from just
   before the DELETE to the listener's ERROR frame for that subscription, against 1 s.
2. Fan-out: 1,000 subscribers (50 customers x 20 connections, all participants of one room)
   of that room's message topic; one message is published straight to the channel-layer
   group the way the pusher does (`group_send` of `realtime.pusher.frame(...)`), so the
   figure is the web process's share: publish -> last subscriber has the frame. 10 rounds,
   median and worst.
3. Frames/s of one web process: 50 messages published back to back to the same 1,000
   subscribers; frames received / (last frame - first publish). The web server's and the
   client's CPU shares are shown alongside, since the client shares the machine.
4. Memory per idle connection: a fresh web server process, 10,000 connected and subscribed
   STOMP connections (200 per customer); (VmRSS after - VmRSS before) / connections.

`--server daphne` runs the same four parts with daphne as the web server (`daphne -v 0`: its
defaults, as `make run` and the test stacks serve the project, without the access log, as
uvicorn runs without one), for decision 0005's comparison. Its figures name daphne and go to
`.local/bench/realtime-daphne.json`, so `make bench`'s summary keeps production's. None of
the parts is a slow reader: daphne has no back-pressure (its `send` never waits), which is
why production does not run it, and no figure here stands for that.

BENCH_SCALE (default 1.0) multiplies the subscriber and connection counts, for a quick run.
The benchmark raises its own open-file limit to the hard limit; the servers inherit it.

    eval "$(scripts/services env)"; .venv/bin/python benchmarks/realtime.py
    BENCH_SCALE=0.05 .venv/bin/python benchmarks/realtime.py     # a quick run
    .venv/bin/python benchmarks/realtime.py --server daphne      # daphne as the web server
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from benchmarks.common import (
    OUT_DIR,
    PYTHON,
    Figure,
    Processes,
    bench_environment,
    drop_namespace,
    ensure_customers,
    free_port,
    open_loop_posts,
    percentile,
    progress,
    report,
    setup_django,
    uvicorn_command,
    wait_for_port,
)
from realtime.stomp import Frame, FrameParser, encode

SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))
DB_NAME = "chat_bench_realtime"
CUSTOMERS = 50  # bench customers, all in the fan-out room (a room holds at most 100)
SUBSCRIBERS = max(CUSTOMERS, round(1_000 * SCALE))
IDLE_CONNECTIONS = max(100, round(10_000 * SCALE))
WARM_CONNECTIONS = 10  # in the memory baseline: the process has served sockets before
RATE = int(os.environ.get("BENCH_RATE", "100"))
LATENCY_SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
FANOUT_ROUNDS = 10
CUT_ROUNDS = 10
BURST = 50
BURST_REPEATS = 3
OPEN_CONCURRENCY = 100  # handshakes in flight while opening many connections
FANOUT_ROOM = "realtime bench fan-out"
LATENCY_ROOM = "realtime bench latency"
MESSAGE_ID_BASE = 10**15  # injected pushes: far above real ids, increasing (subscriptions skip repeats)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVERS = ("uvicorn", "daphne")  # the first is production's web role, the default
ASGI_APPLICATION = "chatproject.asgi:application"


@dataclass
class Setup:
    fanout_room: int
    latency_room: int
    customers: list[int]  # the bench customers, all in the fan-out room
    poster: int  # customer 1: creator of both rooms, sends the latency test's messages
    listener: int  # customer 2: the latency room's other participant


# --- Preparation -----------------------------------------------------------------------


def raise_file_limit() -> int:
    """Open files for 10,000 sockets here and in the servers (children inherit the limit)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def prepare(env: dict[str, str]) -> Setup:
    setup_django(env)

    from accounts.models import Customer
    from chat_command.models import Room, RoomParticipant
    from chat_command.services import NewRoom, do_create_room

    wanted = [f"bench_rt_{n}" for n in range(CUSTOMERS)]
    ensure_customers(wanted, lambda u: f"Bench RT {u[9:]}")
    customers = sorted(Customer.objects.filter(username__in=wanted).values_list("customer_id", flat=True))

    def room(name: str, targets: list[int]) -> int:
        for room_id in Room.objects.filter(room_name=name, created_by_id=1).values_list("room_id", flat=True):
            members = set(RoomParticipant.objects.filter(room_id=room_id).values_list("customer_id", flat=True))
            if members == {1, *targets}:
                return room_id
        return do_create_room(1, NewRoom(name, targets)).room_id

    return Setup(room(FANOUT_ROOM, customers), room(LATENCY_ROOM, [2]), customers, poster=1, listener=2)


def token_for(customer_id: int) -> str:
    from accounts.tokens import issue_token

    return issue_token(customer_id=customer_id, username=f"c{customer_id}", full_name="Bench", roles="ROLE_USER")


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server", choices=SERVERS, default=SERVERS[0], help="the WebSocket server (uvicorn, as production)"
    )
    return parser.parse_args(argv)


def report_name(server: str) -> str:
    """The benchmark's name in its report: production's server keeps the one `make bench` sums up."""
    return "realtime" if server == SERVERS[0] else f"realtime-{server}"


def web_command(server: str, port: int) -> list[str]:
    """The web role on `server`, on loopback; the process it starts is the server itself."""
    if server == "uvicorn":
        return uvicorn_command(port)
    return [str(Path(PYTHON).parent / "daphne"), "-v", "0", "-b", "127.0.0.1", "-p", str(port), ASGI_APPLICATION]


def start_web(processes: Processes, server: str, port: int) -> subprocess.Popen[bytes]:
    child = processes.start(*web_command(server, port))
    wait_for_port(port, timeout=60)
    return child


def wait_for_groups(prefix: str, timeout: float = 90.0) -> None:
    """Wait until the projector and the pusher have their partitions; raise, naming the one that has not."""
    from infrastructure.messaging import consumers

    deadline = time.monotonic() + timeout
    for role in ("projector", "pusher"):
        while not (consumers.read_status(f"{prefix}-{role}") or {}).get("assigned"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {role} did not join its consumer group {prefix}-{role} within {timeout:g} s")
            time.sleep(0.2)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# --- A tiny STOMP client -----------------------------------------------------------------


@dataclass
class StompClient:
    ws: ClientConnection
    parser: FrameParser = field(default_factory=FrameParser)
    pending: deque[Frame] = field(default_factory=deque)

    async def send(self, command: str, headers: Iterable[tuple[str, str]], body: bytes = b"") -> None:
        await self.ws.send(encode(Frame(command, tuple(headers), body)).decode())

    async def next_frame(self, timeout: float = 30.0) -> Frame:
        while not self.pending:
            message = await asyncio.wait_for(self.ws.recv(), timeout)
            self.pending.extend(f for f in self.parser.feed(message) if f is not None)
        return self.pending.popleft()

    async def expect(self, command: str) -> Frame:
        frame = await self.next_frame()
        if frame.command != command:
            raise RuntimeError(f"expected {command}, got {frame.command}: {frame.header('message')} {frame.body!r}")
        return frame


async def open_stomp(port: int, token: str, destination: str) -> StompClient:
    """Connect (STOMP 1.2, jwt_token header, no heart-beats) and subscribe, confirmed by a receipt."""
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws/chat",
        subprotocols=[Subprotocol("v12.stomp")],
        compression=None,
        ping_interval=None,
        open_timeout=60,
        close_timeout=5,
    )
    client = StompClient(ws)
    try:
        connect_headers = [("accept-version", "1.2"), ("host", "127.0.0.1"), ("heart-beat", "0,0")]
        await client.send("CONNECT", [*connect_headers, ("jwt_token", token)])
        await client.expect("CONNECTED")
        await client.send("SUBSCRIBE", [("id", "sub-0"), ("destination", destination), ("receipt", "subscribed")])
        await client.expect("RECEIPT")
    except BaseException:
        await ws.close()
        raise
    return client


async def open_many(port: int, tokens: list[str], destination: str, count: int) -> tuple[list[StompClient], int]:
    """`count` subscribed connections, tokens taken in turn; returns them and the failures."""
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    bar = progress(count, "connections opened", "conn")

    async def one(n: int) -> StompClient:
        async with gate:
            try:
                return await open_stomp(port, tokens[n % len(tokens)], destination)
            finally:
                bar.update(1)

    results = await asyncio.gather(*(one(n) for n in range(count)), return_exceptions=True)
    bar.close()
    clients = [r for r in results if isinstance(r, StompClient)]
    errors = [r for r in results if not isinstance(r, StompClient)]
    if errors:
        print(f"  {len(errors)} connections failed, e.g. {errors[0]!r}", file=sys.stderr)
    return clients, len(errors)


async def close_all(clients: list[StompClient]) -> None:
    gate = asyncio.Semaphore(500)

    async def one(client: StompClient) -> None:
        async with gate:
            await client.ws.close()

    await asyncio.gather(*(one(c) for c in clients), return_exceptions=True)


def message_topic(room_id: int) -> str:
    return f"/topic/message/roomId/{room_id}"


# --- 1. End to end: POST -> MESSAGE ------------------------------------------------------


def post_open_loop(
    port: int, token: str, room_id: int, sent: dict[int, float], failures: list[int], total: int
) -> None:
    """`total` posts at RATE per second; sent[messageId] = perf_counter() just before the POST."""
    run = uuid.uuid4().hex[:8]
    for post in open_loop_posts(
        port, token, RATE, total, lambda i: {"roomId": room_id, "content": f"realtime bench {run} {i}"}
    ):
        if post.status != 200:
            failures.append(post.index)
        else:  # the reference's {success, message, data}
            sent[json.loads(post.body)["data"]["messageId"]] = post.sent


async def end_to_end(http_port: int, ws_port: int, pusher_pid: int, setup: Setup) -> list[Figure]:
    listener = await open_stomp(ws_port, token_for(setup.listener), message_topic(setup.latency_room))
    arrived: dict[int, float] = {}

    async def collect() -> None:
        try:
            async for message in listener.ws:
                now = time.perf_counter()
                for frame in listener.parser.feed(message):
                    if frame is not None and frame.command == "MESSAGE":
                        arrived[json.loads(frame.body)["messageId"]] = now
        except ConnectionClosed:
            pass

    reader = asyncio.create_task(collect())
    token = token_for(setup.poster)

    async def send(total: int) -> tuple[dict[int, float], list[int]]:
        sent: dict[int, float] = {}
        failures: list[int] = []
        await asyncio.to_thread(post_open_loop, http_port, token, setup.latency_room, sent, failures, total)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not set(sent) <= set(arrived):
            await asyncio.sleep(0.1)
        return sent, failures

    await send(10)  # warm-up: the first events through new consumer groups and connections are slow
    print(f"1. end to end: {RATE} POST /command/message per second for {LATENCY_SECONDS} s", flush=True)
    pusher_cpu, wall = cpu_seconds(pusher_pid), time.perf_counter()
    sent, failures = await send(RATE * LATENCY_SECONDS)
    pusher_share = (cpu_seconds(pusher_pid) - pusher_cpu) / (time.perf_counter() - wall) * 100
    reader.cancel()
    await listener.ws.close()
    latencies = [(arrived[m] - t) * 1000 for m, t in sent.items() if m in arrived]
    posted = RATE * LATENCY_SECONDS
    return [
        Figure(f"p50 POST -> MESSAGE at {RATE}/s (2-person room)", percentile(latencies, 50), "ms", 15, False),
        Figure(f"p99 POST -> MESSAGE at {RATE}/s", percentile(latencies, 99), "ms", 50, False),
        Figure("  max POST -> MESSAGE", max(latencies, default=float("nan")), "ms"),
        Figure("  messages posted", posted - len(failures), "", posted),
        Figure("  of them received by the subscriber", len(latencies), "", posted - len(failures)),
        Figure("  pusher CPU meanwhile", pusher_share, "%"),
    ]


# --- 1b. Access cut: removal -> ERROR -----------------------------------------------------


def http_call(port: int, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One request as `token`'s customer; its status and the envelope's data."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json", "Cookie": f"jwt_token={token}"}
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        response = conn.getresponse()
        answer = response.read()
        data = json.loads(answer).get("data") if answer else None
        return response.status, data
    finally:
        conn.close()


async def access_cut(http_port: int, ws_port: int, setup: Setup) -> list[Figure]:
    """A member watching a room is removed: the time from the DELETE to their ERROR frame."""
    print(f"1b. access cut: {CUT_ROUNDS} rooms, the listener removed while subscribed", flush=True)
    creator, listener = token_for(setup.poster), token_for(setup.listener)
    delays: list[float] = []
    for n in range(CUT_ROUNDS):
        body = {"roomName": f"realtime bench access cut {n}", "targetCustomerIds": [setup.listener]}
        status, room_id = await asyncio.to_thread(http_call, http_port, creator, "POST", "/command/room", body)
        if status != 200:
            raise RuntimeError(f"creating a room answered {status}")
        client = await open_stomp(ws_port, listener, message_topic(room_id))
        try:
            removal = f"/command/room/{room_id}/participants/{setup.listener}"
            started = time.perf_counter()
            status, _ = await asyncio.to_thread(http_call, http_port, creator, "DELETE", removal)
            if status != 200:
                raise RuntimeError(f"the removal answered {status}")
            frame = await client.expect("ERROR")
            delays.append((time.perf_counter() - started) * 1000)
            if frame.header("subscription") != "sub-0":
                raise RuntimeError(f"the ERROR names subscription {frame.header('subscription')!r}")
        finally:
            await client.ws.close()
    return [
        Figure("median DELETE participant -> its subscription's ERROR", statistics.median(delays), "ms"),
        Figure(f"worst DELETE participant -> ERROR of {CUT_ROUNDS}", max(delays), "ms", 1000, False),
    ]


# --- 2 and 3. Fan-out and frames/s --------------------------------------------------------


@dataclass
class Tally:
    """MESSAGE frames received by all subscribers together, and when the last one came."""

    frames: int = 0
    last: float = 0.0
    target: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, more: int) -> None:
        self.target = self.frames + more
        self.reached.clear()


async def count_frames(client: StompClient, tally: Tally) -> None:
    """Count frames by their NUL terminators: cheap, so the client keeps up with the server."""
    try:
        async for message in client.ws:
            n = message.count("\0") if isinstance(message, str) else message.count(b"\0")
            if n:
                tally.frames += n
                tally.last = time.perf_counter()
                if tally.frames >= tally.target:
                    tally.reached.set()
    except ConnectionClosed:
        pass


class Publisher:
    """Pushes a message to a room's message group exactly as the pusher role does."""

    def __init__(self, room_id: int) -> None:
        from channels.layers import get_channel_layer

        from realtime.hub import room_group

        self.layer: Any = get_channel_layer()
        self.room_id = room_id
        self.group = room_group(room_id, "message")
        self.sequence = MESSAGE_ID_BASE + int(time.time() * 1000) * 1000

    async def publish(self) -> None:
        from realtime.pusher import frame

        self.sequence += 1
        body = {
            "messageId": self.sequence,
            "roomId": self.room_id,
            "senderId": 1,
            "senderFullName": "Vũ Thanh Hải",
            "content": "a fan-out benchmark message of an ordinary length, about sixty",
            "sentAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        await self.layer.group_send(self.group, {"type": "hub.push", "group": self.group, **frame(body, self.sequence)})


async def fan_out(ws_port: int, server: str, server_pid: int, setup: Setup) -> list[Figure]:
    tokens = [token_for(c) for c in setup.customers]
    print(f"2. fan-out: opening {SUBSCRIBERS} subscribers", flush=True)
    opened_at = time.perf_counter()
    clients, failed = await open_many(ws_port, tokens, message_topic(setup.fanout_room), SUBSCRIBERS)
    open_rate = len(clients) / (time.perf_counter() - opened_at)
    tally = Tally()
    readers = [asyncio.create_task(count_frames(c, tally)) for c in clients]
    publisher = Publisher(setup.fanout_room)
    await asyncio.sleep(1)

    async def round_trip(messages: int, timeout: float) -> tuple[float, bool]:
        """Publish back to back; ms from the first publish to the last frame, and whether all came."""
        tally.expect(messages * len(clients))
        started = time.perf_counter()
        for _ in range(messages):
            await publisher.publish()
        try:
            await asyncio.wait_for(tally.reached.wait(), timeout)
        except TimeoutError:
            return (tally.last - started) * 1000, False
        return (tally.last - started) * 1000, True

    await round_trip(1, 10)  # warm-up
    fanouts: list[float] = []
    incomplete = 0
    for _ in range(FANOUT_ROUNDS):
        await asyncio.sleep(0.3)
        elapsed, complete = await round_trip(1, 10)
        fanouts.append(elapsed)
        incomplete += not complete

    print(f"3. frames/s: {BURST} messages back to back to {len(clients)} subscribers, x{BURST_REPEATS}", flush=True)
    rates: list[float] = []
    server_share: list[float] = []
    client_share: list[float] = []
    for _ in range(BURST_REPEATS):
        await asyncio.sleep(1)
        before = tally.frames
        server_cpu, client_cpu, wall = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
        elapsed, complete = await round_trip(BURST, 60)
        wall = time.perf_counter() - wall
        incomplete += not complete
        rates.append((tally.frames - before) / (elapsed / 1000))
        server_share.append((cpu_seconds(server_pid) - server_cpu) / wall * 100)
        client_share.append((time.process_time() - client_cpu) / wall * 100)

    for reader in readers:
        reader.cancel()
    await close_all(clients)
    n = len(clients)
    return [
        Figure(f"median fan-out to {n} (layer publish -> last)", statistics.median(fanouts), "ms", 250, False),
        Figure(f"worst fan-out to {n} of {FANOUT_ROUNDS} rounds", max(fanouts), "ms", 250, False),
        Figure(f"frames/s, one {server}, {BURST} msgs x {n} subs", statistics.median(rates), "/s", 20_000),
        Figure(f"  {server} CPU during the bursts", statistics.median(server_share), "%"),
        Figure("  client CPU during the bursts (same machine)", statistics.median(client_share), "%"),
        Figure("  rounds with frames missing", incomplete, "", 1, False),
        Figure("  subscribers that failed to connect", failed, "", 1, False),
        Figure("  connections opened per second", open_rate, "/s"),
    ]


# --- 4. Memory per idle connection ---------------------------------------------------------


async def memory(processes: Processes, server: str, setup: Setup) -> list[Figure]:
    port = free_port()
    web = await asyncio.to_thread(start_web, processes, server, port)
    tokens = [token_for(c) for c in setup.customers]
    destination = message_topic(setup.fanout_room)
    warm, _ = await open_many(port, tokens, destination, WARM_CONNECTIONS)
    await asyncio.sleep(2)
    before = rss_kb(web.pid)
    print(f"4. memory: opening {IDLE_CONNECTIONS} idle connections ({server} at {before / 1024:.0f} MiB)", flush=True)
    opened_at = time.perf_counter()
    clients, failed = await open_many(port, tokens, destination, IDLE_CONNECTIONS)
    open_seconds = time.perf_counter() - opened_at
    await asyncio.sleep(3)
    after = rss_kb(web.pid)
    print(f"   {len(clients)} open in {open_seconds:.1f} s; {server} at {after / 1024:.0f} MiB; closing", flush=True)
    await close_all(clients + warm)
    per_connection = (after - before) / max(len(clients), 1)
    return [
        Figure(f"memory per idle STOMP connection, {server} ({len(clients)})", per_connection, "KB", 50, False),
        Figure(f"  {server} RSS with them", after / 1024, "MiB"),
        Figure("  idle connections that failed to open", failed, "", 1, False),
        Figure("  idle connections opened per second", len(clients) / open_seconds, "/s"),
    ]


async def run(
    processes: Processes, server: str, http_port: int, ws_port: int, pids: dict[str, int], setup: Setup
) -> list[Figure]:
    figures = await end_to_end(http_port, ws_port, pids["pusher"], setup)
    figures += await access_cut(http_port, ws_port, setup)
    figures += await fan_out(ws_port, server, pids["web"], setup)
    figures += await memory(processes, server, setup)
    return figures


def measure(env: dict[str, str], server: str) -> list[Figure]:
    """Prepare the rooms, start the roles with `server` for the WebSockets, run the four parts; their figures."""
    setup = prepare(env)
    rooms = f"fan-out room {setup.fanout_room}, latency room {setup.latency_room}"
    print(f"scale {SCALE}, web server {server}: {rooms}", flush=True)
    http_port, ws_port = free_port(), free_port()
    with Processes(env) as processes:
        processes.start(PYTHON, "manage.py", "relay_outbox")
        processes.start(PYTHON, "manage.py", "consume_events", "projector")
        pusher = processes.start(PYTHON, "manage.py", "consume_events", "pusher")
        processes.web(http_port)
        web = start_web(processes, server, ws_port)
        wait_for_groups(env["KAFKA_GROUP_PREFIX"])
        pids = {"pusher": pusher.pid, "web": web.pid}
        return asyncio.run(run(processes, server, http_port, ws_port, pids, setup))


def main(argv: list[str] | None = None) -> None:
    server = options(argv).server
    started = time.monotonic()
    files = raise_file_limit()
    if files < IDLE_CONNECTIONS + 1_000:
        sys.exit(f"the open-file limit ({files}) is too low for {IDLE_CONNECTIONS} connections")
    env = bench_environment(DB_NAME)
    keys = Path(env["CHAT_STATE_DIR"]) / "keys"
    env.update(
        CHAT_EMBEDDED_WORKERS="false",
        KAFKA_AUTO_OFFSET_RESET="latest",
        JWT_PRIVATE_KEY_PATH=str(keys / "private_key.pem"),
        JWT_PUBLIC_KEY_PATH=str(keys / "public_key.pem"),
    )
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    try:
        figures = measure(env, server)
    finally:
        drop_namespace(env)
    report(report_name(server), figures)
    print(f"(took {time.monotonic() - started:.0f} s at BENCH_SCALE={SCALE}, web server {server})")


if __name__ == "__main__":
    main()

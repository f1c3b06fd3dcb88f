"""The realtime tier against a peer: ours, uvicorn alone and Centrifugo; one client, one server at a time.

Each server gets the same load from the same compiled client (benchmarks/loadgen), one after
the other on the same machine:

- **ours**: every production role as in the pipeline benchmark (the api role, two uvicorn web
  processes, relay, projector, pusher; a database and a namespace of its own, dropped at the
  end). Subscribers are STOMP clients of one room's message topic, spread over the two web
  processes (SUBSCRIBERS connections of 50 participants); a message is `POST /command/message`,
  so its way runs through the outbox, Kafka, the pusher and Redis.
- **uvicorn alone** (benchmarks/bare_stomp.py): the web role's uvicorn and protocol in one
  process, with the least application that answers the same client (CONNECTED, RECEIPT, and a
  POST that writes one MESSAGE frame to every socket): the floor under any cut in ours.
- **Centrifugo** (CENTRIFUGO_VERSION, in-memory engine, built from the Go module proxy into
  `.local/cache/centrifugo/` on first use; skipped, and said so, when it cannot be built):
  subscribers are clients of its JSON protocol with connection JWTs, subscribed to the channel
  named by the room's number; a message is a publication through its server API
  (`POST /api/publish`).

For each server, after a warm-up (a few subscribers, one message):
1. connect and subscribe SUBSCRIBERS clients, 64 at a time: from the first connection's start
   to the last subscription's confirmation, and the server's CPU per connection meanwhile;
2. memory per idle connection: the server's resident memory once they are subscribed and
   idle, less before, per connection (ours: the two web processes);
3. one message to SUBSCRIBERS, ROUNDS times: from just before the POST to the last
   subscriber's arrival, median; the server's CPU per delivery over those rounds (ours: the
   realtime tier, the web processes, the pusher and Redis; and every process of the system);
4. a burst of BURST messages at once (BURST connections): each delivery's time from its
   message's POST, p50 and p99;
5. the SUBSCRIBERS connections closed at once: the server's CPU per connection until the
   processes that held them are quiet again (under 2% of a core for a second; a shared service
   such as Redis may stay busy with others' work, so it does not decide);
6. then BIG subscribers instead, one message ROUNDS_BIG times: the last arrival, median.

Targets (issue 23): one message to 1,000 at most 40 ms end to end; burst p99 under 150 ms;
1,000 connected and subscribed in under 1 s; and every row within 1.5x of Centrifugo's.

    eval "$(scripts/services env)"; .venv/bin/python benchmarks/peer.py
    .venv/bin/python benchmarks/peer.py --servers ours,uvicorn   # without Centrifugo
    .venv/bin/python benchmarks/peer.py --servers ours --subscribers 100 --big 200   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import loadgen
from benchmarks.common import (
    OUT_DIR,
    PYTHON,
    Figure,
    Processes,
    percentile,
    report,
    setup_django,
    wait_for_port,
    wait_until,
)
from benchmarks.cpu import Meter, spent
from benchmarks.instance import pid_in, server_ports, service_pid_file
from benchmarks.load import process_tree
from benchmarks.realtime import raise_file_limit, rss_kb, token_for, wait_for_groups
from benchmarks.system import (
    consumers_idle,
    create_rooms,
    drop_system,
    meter_of,
    services_home,
    system_environment,
    system_total,
    the_system,
)

DB_NAME = "chat_bench_peer"
CENTRIFUGO_MODULE = "github.com/centrifugal/centrifugo/v6"
CENTRIFUGO_VERSION = "v6.9.1"
CENTRIFUGO_HOME = loadgen.CACHE / "centrifugo"
PARTICIPANTS = 50  # the room's listeners; each holds subscribers/50 connections
WARM_UP = 10
ARRIVAL_TIMEOUT_S = 30.0
# Targets of issue 23: end to end to 1,000 subscribers; burst p99; connecting 1,000; a peer's ratio.
LAST_ARRIVAL_TARGET_MS = 40.0
AFTER_PUSHER_TARGET_MS = 30.0
MESSAGE_ID = re.compile(r'"messageId": ?(\d+)')  # the push's own, beside its body
BURST_P99_TARGET_MS = 150.0
CONNECT_TARGET_MS = 1000.0
PEER_RATIO = 1.5
SERVERS = ("ours", "uvicorn", "centrifugo")
# The server has finished with its closed connections once the processes that held them spend
# under 2% of a core (a second's window: the kernel counts CPU in 10 ms ticks per process).
QUIET_WINDOW_S, QUIET_CPU_S, QUIET_TIMEOUT_S = 1.0, 0.02, 30.0


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default=",".join(SERVERS), help="which servers to measure, in turn")
    parser.add_argument("--subscribers", type=int, default=1000, help="subscribers of the room (1000)")
    parser.add_argument("--big", type=int, default=5000, help="subscribers of the room in the last part (5000)")
    parser.add_argument("--rounds", type=int, default=10, help="single messages to SUBSCRIBERS (10)")
    parser.add_argument("--rounds-big", type=int, default=3, help="single messages to BIG (3)")
    parser.add_argument("--burst", type=int, default=50, help="messages sent at once (50)")
    args = parser.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    if unknown := set(args.servers) - set(SERVERS):
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    for name in ("subscribers", "big"):
        if getattr(args, name) % PARTICIPANTS:
            parser.error(f"--{name} must be a multiple of {PARTICIPANTS}")
    return args


@dataclass
class Server:
    """One server under test, as the client and the meters see it."""

    name: str
    protocol: str  # the subscribers' (loadgen subscribe -protocol)
    ws_ports: list[int]
    room: int
    tokens: list[str]  # one per participant; each holds several connections
    publish: Callable[[int, float], loadgen.Posts]  # (messages, rate) -> the posts under way
    # The processes that hold the connections (by name): their memory grows with them, and they
    # are quiet again once done with closed ones.
    holders: Mapping[str, Callable[[], int | None]]
    meters: dict[str, Meter] = field(default_factory=dict)  # CPU accounts, by what they cover
    tap: RedisTap | None = None  # ours: when each message's push reached Redis

    def subscribers(self, count: int, name: str) -> loadgen.Subscribers:
        tokens = [self.tokens[n % len(self.tokens)] for n in range(count)]
        return loadgen.Subscribers([(t, self.room) for t in tokens], self.ws_ports, f"peer-{name}", self.protocol)

    def resident_kb(self) -> int:
        pids = [pid for pid_of in self.holders.values() if (pid := pid_of())]
        return sum(rss_kb(member) for pid in pids for member in process_tree(pid))

    def cpu(self) -> dict[str, dict[str, float]]:
        return {name: meter.read() for name, meter in self.meters.items()}

    def wait_until_quiet(self) -> None:
        """Until the processes that held the connections spend under QUIET_CPU_S in QUIET_WINDOW_S;
        if they never do, the error says what each process of each account spent in the last window."""
        holders, accounts = Meter(dict(self.holders)), list(self.meters.values())
        deadline, last = time.monotonic() + QUIET_TIMEOUT_S, [holders.read(), *(m.read() for m in accounts)]
        busy: dict[str, int] = {}
        while time.monotonic() < deadline:
            time.sleep(QUIET_WINDOW_S)
            now = [holders.read(), *(m.read() for m in accounts)]
            if sum(spent(last[0], now[0]).values()) < QUIET_CPU_S:
                return
            busy = {name: round(s * 1000) for b, a in zip(last, now, strict=True) for name, s in spent(b, a).items()}
            last = now
        raise RuntimeError(
            f"{self.name}: still busy {QUIET_TIMEOUT_S:g} s after its clients left; "
            f"CPU ms in the last {QUIET_WINDOW_S:g} s: {busy}"
        )

    def cpu_since(self, before: dict[str, dict[str, float]]) -> dict[str, float]:
        """CPU seconds of each account since `before`; what is kept apart (the load client) left out."""
        used = {name: spent(before[name], meter.read()) for name, meter in self.meters.items()}
        return {name: system_total(by_process) for name, by_process in used.items()}


def last_arrivals(server: Server, subscribers: loadgen.Subscribers, posts: list[loadgen.Post]) -> list[list[float]]:
    """For each post, every subscriber's delay from its sending, in ms, once all have it."""
    ids = {post.message_id for post in posts}
    if None in ids or len(posts) == 0:
        raise RuntimeError(f"{server.name}: a message was not accepted: {[p.status for p in posts]}")

    def everyone_has_them() -> bool:
        subscribers.poll()
        return all(ids <= received.keys() for received in subscribers.arrivals.values())

    if not wait_until(everyone_has_them, ARRIVAL_TIMEOUT_S, interval=0.05):
        raise RuntimeError(f"{server.name}: messages missing {ARRIVAL_TIMEOUT_S:g} s after they were sent")
    return [
        [(received[post.message_id] - post.sent_ns) / 1e6 for received in subscribers.arrivals.values()]
        for post in posts
        if post.message_id is not None
    ]


def single(server: Server, subscribers: loadgen.Subscribers) -> tuple[float, float | None]:
    """One message: ms from its POST to its last arrival, and from its publication in Redis (ours)."""
    posts = server.publish(1, 1.0).wait()
    (delays,) = last_arrivals(server, subscribers, posts)
    pushed = after_pusher(server.tap, posts, [delays]) if server.tap else []
    return max(delays), max(pushed) if pushed else None


def after_pusher(tap: RedisTap, posts: list[loadgen.Post], delays: list[list[float]]) -> list[float]:
    """Each delivery's delay from its message's publication in Redis, in ms (messages the tap saw)."""
    shifted = []
    for post, message in zip(posts, delays, strict=True):
        if (published := tap.published.get(post.message_id or 0)) is not None:
            shifted += [d - (published - post.sent_ns) / 1e6 for d in message]
    return shifted


class RedisTap(threading.Thread):
    """When the pusher's publication of each message reached Redis: a subscriber of the room's
    message group in this process (time.time_ns() of its arrival, by messageId)."""

    def __init__(self, channel: str) -> None:
        super().__init__(daemon=True)
        from infrastructure import backends

        self.pubsub = backends.redis_client().pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        self.published: dict[int, int] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is None:
                continue
            now = time.time_ns()
            if found := MESSAGE_ID.search(str(message["data"])):
                self.published.setdefault(int(found.group(1)), now)

    def stop(self) -> None:
        self.halt.set()
        self.join(5)
        self.pubsub.close()


def measure(server: Server, args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}
    warm = server.subscribers(WARM_UP, f"{server.name}-warm")
    warm.start()
    single(server, warm)
    warm.stop()
    time.sleep(1)
    before_kb = server.resident_kb()
    subscribers = server.subscribers(args.subscribers, server.name)
    before = server.cpu()
    subscribers.start()
    results["connect"] = subscribers.connect_seconds * 1000
    for name, seconds in server.cpu_since(before).items():
        results[f"connect cpu: {name}"] = seconds * 1e6 / args.subscribers
    try:
        time.sleep(1)  # idle
        results["memory"] = (server.resident_kb() - before_kb) / args.subscribers
        before = server.cpu()
        timed = [single(server, subscribers) for _ in range(args.rounds)]
        lasts = [last for last, _ in timed]
        if after := [since for _, since in timed if since is not None]:
            results["after pusher"] = statistics.median(after)
        for name, seconds in server.cpu_since(before).items():
            results[f"cpu: {name}"] = seconds * 1e6 / (args.rounds * args.subscribers)
        results["last arrival"] = statistics.median(lasts)
        # Due at once: the client sends them as fast as its connections open.
        burst = server.publish(args.burst, args.burst * 1000.0).wait()
        by_message = last_arrivals(server, subscribers, burst)
        delays = sorted(d for message in by_message for d in message)
        results["burst p50"], results["burst p99"] = percentile(delays, 50), percentile(delays, 99)
        if server.tap and (pushed := after_pusher(server.tap, burst, by_message)):
            results["burst after pusher p99"] = percentile(sorted(pushed), 99)
    except BaseException:
        subscribers.stop()
        raise
    before = server.cpu()
    subscribers.stop()  # every connection ends at once, as when a load balancer drops them
    server.wait_until_quiet()
    for name, seconds in server.cpu_since(before).items():
        results[f"close cpu: {name}"] = seconds * 1e6 / args.subscribers
    big = server.subscribers(args.big, f"{server.name}-big")
    big.start()
    try:
        results["big last arrival"] = statistics.median(single(server, big)[0] for _ in range(args.rounds_big))
        results["big connect"] = big.connect_seconds * 1000
    finally:
        big.stop()
    return results


# --- ours ---------------------------------------------------------------------------------------


def measure_ours(args: argparse.Namespace) -> dict[str, float]:
    env = system_environment(DB_NAME, DATABASE_CONN_MAX_AGE="3600")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    setup_django(env)
    first = server_ports(3)
    http_port, ws_ports = first, [first + 1, first + 2]
    system = the_system(env, http_port, ws_ports)
    try:
        system.start_all()
        wait_for_groups(env["KAFKA_GROUP_PREFIX"])
        ((room, listeners),) = create_rooms(1, PARTICIPANTS).items()
        wait_until(consumers_idle, 60)
        home = services_home(env)
        web = {name: (lambda name=name: system.pid(name)) for name in ("web-ws-a", "web-ws-b")}
        realtime = Meter(
            {**web, "pusher": lambda: system.pid("pusher"), "redis": lambda: pid_in(service_pid_file(home, "redis"))}
        )
        poster = token_for(1)
        from channels.layers import get_channel_layer

        from realtime.hub import room_group

        tap = RedisTap(get_channel_layer()._group_name(room_group(room, "message")))
        tap.start()
        server = Server(
            name="ours",
            protocol="stomp",
            ws_ports=ws_ports,
            room=room,
            tokens=[token_for(c) for c in listeners],
            publish=lambda count, rate: loadgen.Posts(
                http_port, poster, [room], rate, count / rate, "peer", connections=count
            ),
            holders=web,
            meters={"realtime tier": realtime, "the system": meter_of(env, system)},
            tap=tap,
        )
        try:
            return measure(server, args)
        finally:
            tap.stop()
    finally:
        system.stop_all()
        drop_system(env)


# --- uvicorn alone -------------------------------------------------------------------------------


# The web role's uvicorn options (deploy/entrypoint.sh; a test holds them to it).
WEB_ROLE_OPTIONS = (
    "--ws infrastructure.http.websocket:DirectSendProtocol",
    "--ws-per-message-deflate false",
    "--no-proxy-headers",
    "--no-access-log",
)


def alone(name: str, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    """A server that is one process: it holds the connections and is the whole CPU account."""
    pid_of: dict[str, Callable[[], int | None]] = {name: lambda: process.pid}
    return {"holders": pid_of, "meters": {"server": Meter(dict(pid_of))}}


def measure_uvicorn(args: argparse.Namespace) -> dict[str, float]:
    port = server_ports(1)
    command = [str(Path(PYTHON).parent / "uvicorn"), "benchmarks.bare_stomp:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--lifespan", "off", "--log-level", "warning"]
    command += [word for option in WEB_ROLE_OPTIONS for word in option.split()]
    with Processes(dict(os.environ)) as processes:
        process = processes.start(*command)
        wait_for_port(port)
        server = Server(
            name="uvicorn",
            protocol="stomp",
            ws_ports=[port],
            room=1,
            tokens=["unchecked"],
            publish=lambda count, rate: loadgen.Posts(port, "", [1], rate, count / rate, "peer", connections=count),
            **alone("uvicorn", process),
        )
        return measure(server, args)


# --- Centrifugo ---------------------------------------------------------------------------------


def centrifugo_binary() -> Path | None:
    """Centrifugo, built from the Go module proxy on first use; None (and why, printed) if it cannot be."""
    binary = CENTRIFUGO_HOME / CENTRIFUGO_VERSION / "centrifugo"
    if binary.exists():
        return binary
    print(f"building Centrifugo {CENTRIFUGO_VERSION} (a few minutes, once)", flush=True)
    built = subprocess.run(
        ["go", "install", "-trimpath", f"{CENTRIFUGO_MODULE}@{CENTRIFUGO_VERSION}"],
        env={**loadgen.go_environment(), "GOBIN": str(binary.parent)},
        capture_output=True,
        text=True,
    )
    if built.returncode != 0 or not binary.exists():
        print(f"Centrifugo could not be built; measuring ours alone:\n{built.stderr[-2000:]}", file=sys.stderr)
        return None
    return binary


def centrifugo_token(secret: str, user: int) -> str:
    import jwt

    return jwt.encode({"sub": str(user), "exp": int(time.time()) + 3600}, secret, algorithm="HS256")


def centrifugo_config(port: int, secret: str, api_key: str) -> dict[str, object]:
    """Connection JWTs, a key for the server API, any channel open to subscribers; no logs below warnings."""
    return {
        "log": {"level": "warn"},
        "http_server": {"address": "127.0.0.1", "port": port},
        "client": {"token": {"hmac_secret_key": secret}},
        "http_api": {"key": api_key},
        "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
    }


def measure_centrifugo(args: argparse.Namespace, binary: Path) -> dict[str, float]:
    port = server_ports(1)
    secret, api_key = secrets.token_hex(32), secrets.token_hex(16)
    config = OUT_DIR / "peer-centrifugo.json"
    config.write_text(json.dumps(centrifugo_config(port, secret, api_key)))
    room = 1
    issued = 0  # the client numbers the publications: ids go on from one run of it to the next

    def publish(count: int, rate: float) -> loadgen.Posts:
        nonlocal issued
        first, issued = issued + 1, issued + count
        return loadgen.Posts(
            port, "", [room], rate, count / rate, "peer", connections=count, centrifugo_api_key=api_key, first_id=first
        )

    with Processes(dict(os.environ)) as processes:
        process = processes.start(str(binary), "--config", str(config))
        wait_for_port(port)
        server = Server(
            name="centrifugo",
            protocol="centrifugo",
            ws_ports=[port],
            room=room,
            tokens=[centrifugo_token(secret, user) for user in range(2, 2 + PARTICIPANTS)],
            publish=publish,
            **alone("centrifugo", process),
        )
        return measure(server, args)


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Row:
    key: str  # in measure()'s results
    label: str
    unit: str
    target: float | None = None  # ours, absolute (lower is better)
    peer_key: str = ""  # Centrifugo's result, when its key differs


def rows(args: argparse.Namespace) -> list[Row]:
    n = f"{args.subscribers:,}"
    return [
        Row(
            "last arrival",
            f"one message to {n} subscribers, last arrival (median of {args.rounds})",
            "ms",
            LAST_ARRIVAL_TARGET_MS,
        ),
        Row("after pusher", "  the same, from the push's publication in Redis (ours)", "ms", AFTER_PUSHER_TARGET_MS),
        Row("burst p50", f"burst of {args.burst} to {n}: p50 per delivery", "ms"),
        Row("burst p99", f"burst of {args.burst} to {n}: p99 per delivery", "ms", BURST_P99_TARGET_MS),
        Row("burst after pusher p99", "  the same, from each push's publication in Redis (ours)", "ms"),
        Row("big last arrival", f"one message to {args.big:,} subscribers (median of {args.rounds_big})", "ms"),
        Row("connect", f"connect and subscribe {n} clients", "ms", CONNECT_TARGET_MS),
        Row("big connect", f"connect and subscribe {args.big:,} clients", "ms"),
        Row("cpu: realtime tier", "server CPU per delivery (ours: web, pusher, Redis)", "us", peer_key="cpu: server"),
        Row("cpu: the system", "server CPU per delivery (ours: every process)", "us", peer_key="cpu: server"),
        Row(
            "connect cpu: realtime tier",
            "server CPU per connection (ours: web, pusher, Redis)",
            "us",
            peer_key="connect cpu: server",
        ),
        Row(
            "connect cpu: the system",
            "server CPU per connection (ours: every process)",
            "us",
            peer_key="connect cpu: server",
        ),
        Row(
            "close cpu: realtime tier",
            f"server CPU per connection, {n} closing at once (ours: web, pusher, Redis)",
            "us",
            peer_key="close cpu: server",
        ),
        Row("memory", "memory per idle connection", "KB"),
    ]


def figures_of(results: dict[str, dict[str, float]], args: argparse.Namespace) -> list[Figure]:
    ours, peer = results.get("ours"), results.get("centrifugo")
    figures = []
    shown: set[str] = set()  # the other servers' figures, each once
    for row in rows(args):
        other = row.peer_key or row.key
        if ours is not None and row.key in ours:
            figures.append(Figure(f"ours: {row.label}", ours[row.key], row.unit, row.target, False))
        if other not in shown:
            shown.add(other)
            for name, label in (("uvicorn", "uvicorn alone"), ("centrifugo", "Centrifugo")):
                if (value := results.get(name, {}).get(other)) is not None:
                    figures.append(Figure(f"{label}: {row.label.split(' (ours')[0]}", value, row.unit))
        theirs = peer.get(other) if peer else None
        if ours is not None and row.key in ours and theirs:
            figures.append(
                Figure(f"  ours / Centrifugo: {row.label.strip()}", ours[row.key] / theirs, "x", PEER_RATIO, False)
            )
    return figures


def print_table(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    ours, bare, peer = (results.get(name, {}) for name in SERVERS)
    print(f"\n{'figure':<66}{'ours':>10}{'uvicorn':>10}{'Centrifugo':>12}{'ratio':>8}")
    for row in rows(args):
        mine, floor, theirs = ours.get(row.key), bare.get(row.peer_key or row.key), peer.get(row.peer_key or row.key)
        ratio = f"{mine / theirs:.2f}" if mine is not None and theirs else ""
        shown = [f"{v:,.1f}" if v is not None else "-" for v in (mine, floor, theirs)]
        print(f"{row.label + ' (' + row.unit + ')':<66}{shown[0]:>10}{shown[1]:>10}{shown[2]:>12}{ratio:>8}")


def main(argv: list[str] | None = None) -> None:
    args = options(argv)
    raise_file_limit()
    loadgen.binary()
    # Built first: a build must not share the machine with a measurement.
    centrifugo = centrifugo_binary() if "centrifugo" in args.servers else None
    results: dict[str, dict[str, float]] = {}
    for name in args.servers:
        print(f"measuring {name}", flush=True)
        if name == "ours":
            results[name] = measure_ours(args)
        elif name == "uvicorn":
            results[name] = measure_uvicorn(args)
        elif centrifugo is not None:
            results[name] = measure_centrifugo(args, centrifugo)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "peer_results.json").write_text(json.dumps(results, indent=2))
    print_table(results, args)
    report("peer", figures_of(results, args))


if __name__ == "__main__":
    main()

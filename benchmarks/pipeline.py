"""Pipeline: every role running as in production, sends at rising rates, CPU per message by process.

The production roles run against the real services in a database and a namespace (`bench-<hex>`,
dropped at the end) of their own, as in the sustained benchmark: the api role (granian), two
WebSocket web roles (uvicorn), the relay, the projector and the pusher. STOMP subscribers
(CLIENTS/ROOMS per room) listen on ROOMS fresh rooms; then, for each rate, the compiled load
client (benchmarks/loadgen) posts open loop at that rate for SECONDS (after WARM_UP seconds at
the first rate, not reported), and the step lasts until
every accepted message reached every subscriber of its room and the projector and the pusher
have no lag left.

For each rate: accepted posts/s; POST -> MESSAGE p50/p99 over every delivery; the projector's
and the pusher's largest lag (events committed behind the topics' ends, sampled twice a second);
and the CPU milliseconds per accepted message of every process (benchmarks/cpu.py), the
backing services included, PostgreSQL split by the database its backends serve. The load
client's CPU (the post and subscribe processes, and this one) is reported apart, not in the
system's total.

    eval "$(scripts/services env)"
    .venv/bin/python benchmarks/pipeline.py                          # 100..500/s, 15 s each
    .venv/bin/python benchmarks/pipeline.py --rates 50,100 --seconds 5 --rooms 20 --clients 40 --warm-up 0
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import loadgen
from benchmarks.common import (
    OUT_DIR,
    Figure,
    percentile,
    report,
    setup_django,
    wait_until,
)
from benchmarks.cpu import Meter
from benchmarks.instance import server_ports
from benchmarks.load import by_room
from benchmarks.realtime import raise_file_limit, token_for, wait_for_groups
from benchmarks.system import (
    CPU_TARGET_MS,
    LATE_MS,
    LOAD_CLIENT,
    P99_TARGET_MS,
    CpuAccount,
    consumers_idle,
    create_rooms,
    drop_system,
    meter_of,
    print_cpu_table,
    system_environment,
    system_total,
    the_system,
)

DB_NAME = "chat_bench_pipeline"
KEEP_UP = 0.99
DRAIN_TIMEOUT_S = 120.0


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,300,400,500", help="posts per second, one step each")
    parser.add_argument("--seconds", type=float, default=15, help="seconds of posting per step (15)")
    parser.add_argument("--rooms", type=int, default=100, help="rooms the posts go to (100)")
    parser.add_argument("--clients", type=int, default=200, help="STOMP subscribers, spread over the rooms (200)")
    parser.add_argument(
        "--warm-up", type=float, default=10, help="seconds of posting at the first rate first, not reported (10)"
    )
    args = parser.parse_args(argv)
    args.rates = [float(r) for r in args.rates.split(",")]
    if args.clients % args.rooms or not 1 <= args.clients // args.rooms <= 99:
        parser.error("--clients must be 1 to 99 times --rooms (a room holds at most 100 people)")
    return args


class Lag(threading.Thread):
    """The consumer roles' lag (records committed behind their topics' ends, read from Kafka by
    `consumers.lag_by_role`), sampled twice a second: the largest per role since `reset`."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.halt = threading.Event()
        self._lock = threading.Lock()
        self._largest: dict[str, int] = {}

    def run(self) -> None:
        from infrastructure.messaging import consumers

        while not self.halt.wait(0.5):
            try:
                sample = consumers.lag_by_role()
            except Exception:  # noqa: BLE001 - a sample missed is one point fewer, not a wrong one
                continue
            with self._lock:
                for role, lag in sample.items():
                    self._largest[role] = max(self._largest.get(role, 0), lag)

    def reset(self) -> None:
        with self._lock:
            self._largest = {}

    def largest(self, role: str) -> int:
        with self._lock:
            return self._largest.get(role, 0)


def step(
    rate: float,
    args: argparse.Namespace,
    http_port: int,
    rooms: list[int],
    subscribers: loadgen.Subscribers,
    meter: Meter,
    lag: Lag,
) -> tuple[list[Figure], dict[str, float]]:
    """One rate: its figures, and each process's CPU ms per accepted message."""
    account = CpuAccount(meter, subscribers)
    lag.reset()
    posts = loadgen.Posts(http_port, token_for(1), rooms, rate, args.seconds, f"rate {rate:g}").wait()
    accepted = by_room(posts)
    posted = time.monotonic()

    def drained() -> bool:
        subscribers.poll()
        return subscribers.missing(accepted) == 0 and consumers_idle()

    if not wait_until(drained, DRAIN_TIMEOUT_S, interval=0.5):
        print(f"not drained {DRAIN_TIMEOUT_S:.0f} s after the last post of {rate:g}/s", file=sys.stderr)
    drain_s = time.monotonic() - posted
    count = sum(len(ids) for ids in accepted.values())
    per_message = account.per_message(count)

    listeners: dict[int, list[int]] = {}
    for n, (_, room) in enumerate(subscribers.subscriptions):
        listeners.setdefault(room, []).append(n)
    # From when the post was due: time it waited for a free connection in the client counts too.
    latencies = [
        (subscribers.arrivals[n][post.message_id] - post.due_ns) / 1e6
        for post in posts
        if post.message_id is not None
        for n in listeners.get(post.room_id, [])
        if post.message_id in subscribers.arrivals[n]
    ]
    label = f"{rate:g}/s"
    system_ms = system_total(per_message)
    # Over the schedule, or longer if the answers came later: a server that cannot keep up
    # stretches the span, however many posts it accepted in the end.
    span_s = max(args.seconds, (max(p.done_ns for p in posts) - min(p.due_ns for p in posts)) / 1e9)
    figures = [
        Figure(f"{label}: accepted posts/s", count / span_s, "/s", KEEP_UP * rate),
        Figure(
            f"  {label}: posts sent over {LATE_MS:g} ms late", sum(p.late_ms > LATE_MS for p in posts), "", 1, False
        ),
        Figure(f"  {label}: p50 POST -> MESSAGE", percentile(latencies, 50), "ms"),
        Figure(f"  {label}: p99 POST -> MESSAGE", percentile(latencies, 99), "ms", P99_TARGET_MS, False),
        Figure(f"  {label}: deliveries missing", subscribers.missing(accepted), "", 1, False),
        Figure(f"  {label}: largest projector lag", lag.largest("projector"), "ev"),
        Figure(f"  {label}: largest pusher lag", lag.largest("pusher"), "ev"),
        Figure(f"  {label}: drained after the last post", drain_s, "s"),
        Figure(f"  {label}: CPU per message, the system", system_ms, "ms", CPU_TARGET_MS, False),
        Figure(f"  {label}: CPU per message, the load client", per_message[LOAD_CLIENT], "ms"),
    ]
    return figures, per_message


def main(argv: list[str] | None = None) -> None:
    args = options(argv)
    raise_file_limit()
    # Connections kept for the whole run: a PostgreSQL backend that ends mid-step would move its
    # CPU into the postmaster's account, out of its database's.
    env = system_environment(DB_NAME, DATABASE_CONN_MAX_AGE="3600")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    setup_django(env)
    loadgen.binary()
    first = server_ports(3)
    http_port, ws_ports = first, [first + 1, first + 2]
    system = the_system(env, http_port, ws_ports)
    figures: list[Figure] = []
    table: dict[float, dict[str, float]] = {}
    lag = Lag()
    try:
        system.start_all()
        wait_for_groups(env["KAFKA_GROUP_PREFIX"])
        rooms = create_rooms(args.rooms, args.clients // args.rooms)
        subscribers = loadgen.Subscribers(
            [(token_for(c), room) for room, listeners in rooms.items() for c in listeners], ws_ports, "pipeline"
        )
        subscribers.start()
        lag.start()
        wait_until(consumers_idle, 60)  # the rooms' creation has been projected and pushed
        try:
            meter = meter_of(env, system)
            if args.warm_up > 0:
                # A broker started minutes ago spends about twice its CPU per message until its
                # JVM has compiled the hot paths; the roles' first requests open connections.
                print(f"warming up at {args.rates[0]:g}/s for {args.warm_up:g} s (not reported)", flush=True)
                warm_up = argparse.Namespace(**{**vars(args), "seconds": args.warm_up})
                step(args.rates[0], warm_up, http_port, list(rooms), subscribers, meter, lag)
            for rate in args.rates:
                print(f"posting at {rate:g}/s for {args.seconds:g} s", flush=True)
                step_figures, table[rate] = step(rate, args, http_port, list(rooms), subscribers, meter, lag)
                figures += step_figures
        finally:
            subscribers.stop()
        figures.append(Figure("subscriber reconnects", subscribers.reconnects, "", 1, False))
    finally:
        lag.halt.set()
        system.stop_all()
        drop_system(env)
    print_cpu_table(table, "pipeline")
    report("pipeline", figures)


if __name__ == "__main__":
    main()

"""Sustained load: messages/s across many rooms to many STOMP clients, for minutes, losing none.

The production roles run against the real services in a database and a namespace (`bench-<hex>`,
dropped at the end) of their own: the HTTP web role (the api role, granian), two WebSocket web
roles (uvicorn with the direct send), the relay, the projector and the pusher. The compiled
load client (benchmarks/loadgen) posts RATE times a second (open loop, one customer who is in
every room) round-robin to ROOMS fresh rooms, and sends nothing once DURATION is over (posts a
slow server kept waiting for a connection are counted as not sent); CLIENTS STOMP connections,
CLIENTS/ROOMS per room, spread over the two uvicorn processes, subscribe to their room's
message topic and reconnect with `since-message-id` if a connection drops.

Reported: accepted posts/s; posts sent late (each waited for a free connection: the server fell
behind); end-to-end latency (from just before the POST to the MESSAGE frame at a subscriber)
p50/p99/p99.9 over every delivery; errors (posts without a 200, reconnects);
lost messages, which must be 0: a message accepted with a 200 counts as lost unless it is in
MongoDB and every subscriber of its room received it; the CPU milliseconds per accepted
message of every process (as in the pipeline benchmark; the load client's apart, also as a
share of a core while it posts: it shares the machine with the system); the peak resident
memory of each role (the process and its children, sampled every second).

    eval "$(scripts/services env)"
    .venv/bin/python benchmarks/sustained.py                      # 10 min, 500/s, 1,000 rooms, 2,000 clients
    .venv/bin/python benchmarks/sustained.py --duration 30 --rate 50 --rooms 20 --clients 40
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
    free_port,
    percentile,
    progress,
    report,
    setup_django,
    wait_until,
)
from benchmarks.load import Checks, System, by_room
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

DB_NAME = "chat_bench_sustained"
KEEP_UP = 0.99  # share of the asked rate that must be accepted (posts in flight at the end are cut)


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (600)")
    parser.add_argument("--rate", type=float, default=500, help="POST /command/message per second (500)")
    parser.add_argument("--rooms", type=int, default=1000, help="rooms the posts go to (1,000)")
    parser.add_argument("--clients", type=int, default=2000, help="STOMP subscribers, spread over the rooms (2,000)")
    args = parser.parse_args(argv)
    per_room = args.clients // args.rooms
    if args.clients % args.rooms or not 1 <= per_room <= 99:
        parser.error("--clients must be 1 to 99 times --rooms (a room holds at most 100 people)")
    return args


def wait_for_posts(
    args: argparse.Namespace, posting: loadgen.Posts, subscribers: loadgen.Subscribers
) -> list[loadgen.Post]:
    """Wait for the posts, showing the deliveries so far once a second. The posts are read as
    they come (a client whose output nobody reads stops posting once its pipe is full)."""
    posts: list[loadgen.Post] = []
    reader = threading.Thread(target=lambda: posts.extend(posting.wait()), daemon=True)
    reader.start()
    started = time.monotonic()
    with progress(round(args.duration), f"{args.rate:g} msg/s", "s") as bar:
        while reader.is_alive():
            reader.join(1.0)
            subscribers.poll()
            bar.update(min(round(time.monotonic() - started), round(args.duration)) - bar.n)
            bar.set_postfix(delivered=subscribers.deliveries)
    if posting.process.returncode != 0:
        raise RuntimeError("loadgen post failed (see above)")
    return posts


def measure(
    args: argparse.Namespace, system: System, env: dict[str, str], rooms: dict[int, list[int]], http_port: int
) -> tuple[list[Figure], dict[str, float]]:
    """The run's figures, and each process's CPU ms per accepted message."""
    ws_ports = [r.port for r in system.roles.values() if r.name.startswith("web-ws") and r.port]
    subscribers = loadgen.Subscribers(
        [(token_for(c), room) for room, listeners in rooms.items() for c in listeners], ws_ports, "sustained"
    )
    print(f"opening {len(subscribers.subscriptions)} STOMP subscribers", flush=True)
    subscribers.start(timeout=600)
    try:
        wait_until(consumers_idle, 60)  # the rooms' creation has been projected and pushed
        account, started = CpuAccount(meter_of(env, system), subscribers), time.monotonic()
        posting = loadgen.Posts(http_port, token_for(1), list(rooms), args.rate, args.duration, "sustained", cut=True)
        posts = wait_for_posts(args, posting, subscribers)
        # This client shares the machine: its CPU while posting, as a share of a core.
        client_percent = 100 * account.client_seconds() / (time.monotonic() - started)
        accepted = by_room(posts)
        print("waiting for the last messages to be projected and delivered", flush=True)
        checks = Checks(list(rooms), subscribers)

        def caught_up() -> bool:
            subscribers.poll()
            return checks.caught_up(accepted)

        wait_until(caught_up, timeout=300, interval=1.0)
        every = set().union(*accepted.values()) if accepted else set()
        per_message = account.per_message(len(every))
    finally:
        subscribers.stop()
    checks.projected(accepted)
    lost = every - checks.in_mongo
    listeners: dict[int, list[int]] = {}
    for n, (_, room) in enumerate(subscribers.subscriptions):
        listeners.setdefault(room, []).append(n)
    latencies = []
    for post in posts:
        if post.message_id is None:
            continue
        for n in listeners.get(post.room_id, []):
            if post.message_id in subscribers.arrivals[n]:
                # From when the post went out: a saturated server keeps the client's posts waiting
                # for a free connection, which `late` counts.
                latencies.append((subscribers.arrivals[n][post.message_id] - post.sent_ns) / 1e6)
            else:
                lost.add(post.message_id)
    errors = len(posts) - len(every) + subscribers.reconnects
    asked = round(args.rate * args.duration)
    late = sum(p.late_ms > LATE_MS for p in posts)
    figures = [
        Figure(
            f"sustained: accepted posts/s (asked {args.rate:g}/s)",
            len(every) / args.duration,
            "/s",
            KEEP_UP * args.rate,
        ),
        Figure("  sustained: posts not sent (the server fell behind)", asked - len(posts), ""),
        Figure(f"  sustained: posts sent over {LATE_MS:g} ms late", late, "", 1, False),
        Figure("  sustained: p50 POST -> MESSAGE", percentile(latencies, 50), "ms", 15, False),
        Figure("  sustained: p99 POST -> MESSAGE", percentile(latencies, 99), "ms", P99_TARGET_MS, False),
        Figure("  sustained: p99.9 POST -> MESSAGE", percentile(latencies, 99.9), "ms"),
        Figure("  sustained: errors (failed posts + reconnects)", errors, "", 1, False),
        Figure("  sustained: lost messages", len(lost), "", 1, False),
        Figure("  sustained: deliveries", len(latencies), ""),
        Figure("  sustained: CPU per message, the system", system_total(per_message), "ms", CPU_TARGET_MS, False),
        Figure("  sustained: CPU per message, the load client", per_message[LOAD_CLIENT], "ms"),
        Figure("  sustained: CPU of the load client while posting", client_percent, "% of a core"),
    ]
    for role in system.roles.values():
        figures.append(Figure(f"  peak memory, {role.name}", role.peak_rss_kb / 1024, "MiB"))
    return figures, per_message


def main(argv: list[str] | None = None) -> None:
    args = options(argv)
    raise_file_limit()
    started = time.monotonic()
    # Connections kept for the whole run, as in the pipeline benchmark: a PostgreSQL backend that
    # ends would move its CPU into the postmaster's account, out of its database's.
    env = system_environment(DB_NAME, DATABASE_CONN_MAX_AGE="3600")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    setup_django(env)
    http_port = free_port()
    system = the_system(env, http_port, [free_port(), free_port()])
    try:
        system.start_all()
        wait_for_groups(env["KAFKA_GROUP_PREFIX"])
        rooms = create_rooms(args.rooms, args.clients // args.rooms)
        figures, per_message = measure(args, system, env, rooms, http_port)
    finally:
        system.stop_all()
        drop_system(env)
    print_cpu_table({args.rate: per_message}, "sustained")
    report("sustained", figures)
    print(
        f"(took {time.monotonic() - started:.0f} s: {args.duration:g} s at {args.rate:g}/s, "
        f"{args.rooms} rooms, {args.clients} clients)"
    )


if __name__ == "__main__":
    main()

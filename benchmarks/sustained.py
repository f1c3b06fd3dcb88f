"""Sustained load: messages/s across many rooms to many STOMP clients, for minutes, losing none.

The production roles run against the real services in a database and a namespace (`bench-<hex>`,
dropped at the end) of their own: the HTTP web role (the api role, granian), two WebSocket web
roles (uvicorn with the direct send), the relay, the projector and the pusher. RATE posts
per second (open loop, one customer who is in every room) go round-robin to ROOMS fresh rooms;
CLIENTS STOMP connections, CLIENTS/ROOMS per room, spread over the two uvicorn processes,
subscribe to their room's message topic and reconnect with `since-message-id` if a connection
drops.

Reported: accepted posts/s; end-to-end latency (just before the POST -> MESSAGE frame at a
subscriber) p50/p99/p99.9 over every delivery; errors (posts without a 200, broken
subscriptions); lost messages, which must be 0: a message accepted with a 200 counts as lost
unless it is in MongoDB and every subscriber of its room received it; the peak resident
memory of each role (the process and its children, sampled every second) and of this client,
and this client's CPU while it posts (it shares the machine's cores with the system).

    eval "$(scripts/services env)"
    .venv/bin/python benchmarks/sustained.py                      # 10 min, 500/s, 1,000 rooms, 2,000 clients
    .venv/bin/python benchmarks/sustained.py --duration 30 --rate 50 --rooms 20 --clients 40
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    OUT_DIR,
    Figure,
    free_port,
    percentile,
    report,
    setup_django,
    wait_until,
)
from benchmarks.load import Checks, Poster, Subscriber, Subscribers, System, by_room
from benchmarks.realtime import raise_file_limit, token_for, wait_for_groups
from benchmarks.system import create_rooms, drop_system, system_environment, the_system

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


def load(args: argparse.Namespace, poster: Poster, subscribers: Subscribers) -> None:
    """Post for the duration, showing progress once a second."""
    started = time.monotonic()
    with tqdm(total=round(args.duration), unit="s", desc=f"{args.rate:g} msg/s") as bar:
        while (elapsed := time.monotonic() - started) < args.duration:
            time.sleep(min(1.0, args.duration - elapsed))
            bar.update(round(time.monotonic() - started) - bar.n)
            posts = list(poster.posts)
            bar.set_postfix(
                accepted=sum(p.message_id is not None for p in posts),
                errors=sum(p.message_id is None for p in posts),
                delivered=sum(len(s.received) for s in subscribers.all),
            )


def measure(args: argparse.Namespace, system: System, rooms: dict[int, list[int]], http_port: int) -> list[Figure]:
    ws_ports = [r.port for r in system.roles.values() if r.name.startswith("web-ws") and r.port]
    subscribers = Subscribers(
        [
            Subscriber(customer, room, token_for(customer), ws_ports[n % 2 :] + ws_ports[: n % 2])
            for room, listeners in rooms.items()
            for n, customer in enumerate(listeners)
        ]
    )
    print(f"opening {len(subscribers.all)} STOMP subscribers", flush=True)
    subscribers.start(timeout=600)
    checks = Checks(list(rooms), subscribers)
    # This client shares the machine: its CPU while posting is reported, as a share of a core.
    cpu_before, load_started = own_cpu_seconds(), time.monotonic()
    poster = Poster([http_port], token_for(1), list(rooms), args.rate, threads=32).start()
    try:
        load(args, poster, subscribers)
    finally:
        posts = poster.stop()
    client_percent = 100 * (own_cpu_seconds() - cpu_before) / (time.monotonic() - load_started)
    accepted = by_room(posts)
    print("waiting for the last messages to be projected and delivered", flush=True)
    wait_until(lambda: checks.caught_up(accepted), timeout=300, interval=1.0)
    subscribers.stop()
    every = set().union(*accepted.values()) if accepted else set()
    checks.projected(accepted)
    lost = {m for m in every if m not in checks.in_mongo}
    listeners: dict[int, list[Subscriber]] = {}
    for s in subscribers.all:
        listeners.setdefault(s.room_id, []).append(s)
    latencies = []
    for post in posts:
        if post.message_id is None:
            continue
        for s in listeners.get(post.room_id, []):
            if post.message_id in s.arrivals:
                latencies.append((s.arrivals[post.message_id] - post.sent) * 1000)
            else:
                lost.add(post.message_id)
    errors = len(posts) - len(every) + sum(s.reconnects for s in subscribers.all)
    accepted_rate = len(every) / args.duration
    figures = [
        Figure(f"sustained: accepted posts/s (asked {args.rate:g}/s)", accepted_rate, "/s", KEEP_UP * args.rate),
        Figure("  sustained: p50 POST -> MESSAGE", percentile(latencies, 50), "ms", 15, False),
        Figure("  sustained: p99 POST -> MESSAGE", percentile(latencies, 99), "ms", 50, False),
        Figure("  sustained: p99.9 POST -> MESSAGE", percentile(latencies, 99.9), "ms"),
        Figure("  sustained: errors (failed posts + reconnects)", errors, "", 1, False),
        Figure("  sustained: lost messages", len(lost), "", 1, False),
        Figure("  sustained: deliveries", len(latencies), ""),
    ]
    for role in system.roles.values():
        figures.append(Figure(f"  peak memory, {role.name}", role.peak_rss_kb / 1024, "MiB"))
    client_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures.append(Figure("  peak memory, load client (this process)", client_mib, "MiB"))
    figures.append(Figure("  CPU of the load client (this process) while posting", client_percent, "% of a core"))
    return figures


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    args = options(argv)
    raise_file_limit()
    started = time.monotonic()
    env = system_environment(DB_NAME)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    setup_django(env)
    http_port = free_port()
    system = the_system(env, http_port, [free_port(), free_port()])
    try:
        system.start_all()
        wait_for_groups(env["KAFKA_GROUP_PREFIX"])
        rooms = create_rooms(args.rooms, args.clients // args.rooms)
        figures = measure(args, system, rooms, http_port)
    finally:
        system.stop_all()
        drop_system(env)
    report("sustained", figures)
    print(
        f"(took {time.monotonic() - started:.0f} s: {args.duration:g} s at {args.rate:g}/s, "
        f"{args.rooms} rooms, {args.clients} clients)"
    )


if __name__ == "__main__":
    main()

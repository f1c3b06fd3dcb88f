"""Two parts of a message's CPU, each alone in this process: the api's request path and the
read store's writes (docs/benchmarks.md, "The api's request path, again" and "FerretDB's
garbage collector").

`api`: `--sends` POST /command/message (to the write benchmark's rooms) one after another
through Django's WSGI handler and every middleware, in this process (no HTTP server), against
the real PostgreSQL; this process's CPU a send. `read-store`: the projector's writes replayed without Kafka
(`projection.apply_batch` with the projector's memory of views) into the read store:
`--rooms` rooms, batches of `--batch` messages to as many rooms; CPU a message of this process
(the projector's Python), FerretDB and its PostgreSQL backends. Each runs in a database,
namespace and read store of its own, dropped at the end.

    eval "$(scripts/services env)"
    .venv/bin/python benchmarks/parts.py api --sends 3000
    .venv/bin/python benchmarks/parts.py read-store --messages 10000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import command_write
from benchmarks.common import Figure, bench_environment, drop_database, drop_namespace, report, setup_django
from benchmarks.cpu import Meter, spent
from benchmarks.instance import pid_in, service_pid_file
from benchmarks.system import services_home

OTHER = "other"  # PostgreSQL's processes that do not serve the read store: left out


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parts = parser.add_subparsers(dest="part", required=True)
    api = parts.add_parser("api", help="the api's request path, in this process")
    api.add_argument("--sends", type=int, default=3000, help="sends measured (3000), after a tenth as many unmeasured")
    store = parts.add_parser("read-store", help="the projector's writes into the read store, without Kafka")
    store.add_argument("--messages", type=int, default=10_000, help="messages measured (10000)")
    store.add_argument("--rooms", type=int, default=1000, help="rooms (1000)")
    store.add_argument("--batch", type=int, default=25, help="messages a batch, each to another room (25)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = options(argv)
    env = bench_environment(f"chat_bench_parts_{args.part.replace('-', '_')}")
    try:
        if args.part == "api":
            figures = api_path(command_write.prepare(env), args.sends)  # user1 and user2's rooms
        else:
            setup_django(env, seed=False)
            figures = read_store_writes(env, args)
    finally:
        drop_namespace(env)
        drop_database(env)
    report(f"parts_{args.part.replace('-', '_')}", figures)


def api_path(rooms: list[int], sends: int) -> list[Figure]:
    from django.core.wsgi import get_wsgi_application

    call = _wsgi_caller(get_wsgi_application())
    status, headers, _ = call("POST", "/auth/login", {"username": "user1", "password": "123"}, "")
    if not status.startswith("200"):
        raise RuntimeError(f"login failed: {status}")
    cookie = "; ".join(v.split(";")[0] for k, v in headers if k.lower() == "set-cookie")

    def send(count: int) -> None:
        for n in range(count):
            fields = {"roomId": rooms[n % len(rooms)], "content": f"m{n}"}
            status, _, body = call("POST", "/command/message", fields, cookie)
            if not status.startswith("200"):
                raise RuntimeError(f"send failed: {status} {body[:300]!r}")

    send(max(1, sends // 10))
    wall, cpu = time.perf_counter(), time.process_time()
    send(sends)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return [
        Figure("api, in-process: CPU a send", 1e6 * cpu / sends, "us"),
        Figure("api, in-process: wall time a send", 1e6 * wall / sends, "us"),
    ]


def _wsgi_caller(app: Callable[..., Any]) -> Callable[[str, str, dict[str, Any], str], tuple[str, list, bytes]]:
    def call(method: str, path: str, fields: dict[str, Any], cookie: str) -> tuple[str, list, bytes]:
        data = json.dumps(fields).encode()
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_COOKIE": cookie,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(data)),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
        }
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list, exc_info: Any = None) -> None:
            answer.update(status=status, headers=headers)

        body = b"".join(app(environ, start_response))
        return answer["status"], answer["headers"], body

    return call


def read_store_writes(env: dict[str, str], args: argparse.Namespace) -> list[Figure]:
    from django.utils import timezone

    from chat_command.events import MessageSent, RoomCreated
    from chat_query import projection
    from chat_query.projector import MEMO_ROOMS
    from chat_query.store import active_store
    from infrastructure.messaging.events import Event
    from infrastructure.timeutil import iso

    store = active_store(fresh=True)
    store.ensure_indexes()
    now = iso(timezone.now())
    people = [{"id": 2, "fullName": "B", "joinedAt": now}, {"id": 1, "fullName": "A", "joinedAt": now}]
    created: list[Event] = [
        RoomCreated(roomId=r, roomName=f"room {r}", createdBy=1, createdAt=now, participants=people)
        for r in range(1, args.rooms + 1)
    ]
    for start in range(0, args.rooms, 100):
        projection.apply(store, created[start : start + 100])
    seqs = dict.fromkeys(range(1, args.rooms + 1), 0)
    memo = projection.ViewMemo(MEMO_ROOMS)
    message_id = 0

    def batch() -> None:
        nonlocal message_id
        events: list[Event] = []
        for room in random.sample(range(1, args.rooms + 1), min(args.batch, args.rooms)):
            seqs[room] += 1
            message_id += 1
            events.append(
                MessageSent(
                    roomId=room,
                    messageId=message_id,
                    senderId=1,
                    senderFullName="A",
                    content=f"m{message_id}",
                    sentAt=iso(timezone.now()),
                    seq=seqs[room],
                )
            )
        projection.apply_batch(store, events, memo)

    meter = _read_store_meter(env)
    for _ in range(max(1, args.messages // args.batch // 10)):
        batch()
    before, wall = meter.read(), time.perf_counter()
    batches = max(1, args.messages // args.batch)
    for _ in range(batches):
        batch()
    used, wall = spent(before, meter.read()), time.perf_counter() - wall
    used.pop(OTHER, None)
    store.drop()
    messages = batches * min(args.batch, args.rooms)
    figures = [Figure(f"CPU a message, {name}", 1e6 * seconds / messages, "us") for name, seconds in used.items()]
    figures.append(Figure("CPU a message, the three", 1e6 * sum(used.values()) / messages, "us"))
    figures.append(Figure("messages/s", messages / wall, "/s"))
    return figures


def _read_store_meter(env: dict[str, str]) -> Meter:
    home = services_home(env)
    read_store_db = urlsplit(env.get("FERRETDB_POSTGRES_URL", "")).path.lstrip("/")
    postmaster = pid_in(service_pid_file(home, "postgres"))
    me = os.getpid()
    trees = {
        "projector (this process)": lambda: me,
        "ferretdb": lambda: pid_in(service_pid_file(home, "mongo")),
    }

    def group(database: str | None) -> str:
        return "postgresql: read store (FerretDB's)" if database and database == read_store_db else OTHER

    return Meter(trees, (postmaster, group) if postmaster and read_store_db else None)


if __name__ == "__main__":
    main()

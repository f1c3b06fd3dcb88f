"""Fault drills: kill each part of the running system under a steady load, restart it, verify.

The system runs as in production, in a database and a namespace (`drill-<hex>`) of its own: two
web processes (uvicorn, HTTP and WebSockets), `relay_outbox`, `consume_events projector` and
`consume_events pusher`, against a PostgreSQL, Kafka, Redis and FerretDB of its own: a private
instance of scripts/services (benchmarks/instance.py) on free ports, started for the run and
removed after it. The drills crash those servers, so they are never ones that anyone else uses.
Two subscribers per room listen to
`/topic/message/roomId/{id}` over the raw WebSocket endpoint, one on each web process; when
a connection is cut they reconnect (to the other web process first) and subscribe again
with `since-message-id` set to the last messageId they saw.

Each drill, in turn: open-loop posts across the rooms, alternating between the two web
processes; after a few seconds SIGKILL the target (the Kafka broker, the projector, the
pusher, web process A, Redis, the FerretDB server, PostgreSQL), keep it down for the outage,
start it again, keep posting until everything accepted so far is projected and delivered, then
stop posting and check:

- every accepted post (a 200 with a messageId) is in PostgreSQL and in MongoDB;
- the live projection of the drill's rooms equals a fold of their logged events (a rebuild);
- every subscriber received every accepted message of its room, and how many twice;
- the web processes hold no more connections and subscriptions than the subscribers have
  (their gauges `chat_websocket_connections` and `chat_stomp_subscriptions`): nothing leaked.

Posts refused during an outage (no answer, or a 5xx) are errors, not losses. Recovery is the
time from starting the target again to the moment every message accepted before that is in
MongoDB and at every subscriber of its room. The exit status is 1 if anything was lost.

A drill that cannot make progress fails: every wait on the system (a post accepted before the
kill, the target gone, everything caught up after the restart, the subscribers subscribed, the
roles listening and in their groups) gives up after `--patience` seconds (120) with a line
`drill <name> FAILED: <what> did not happen within <n> s; <what was missing>` (or `drills FAILED:`
when the system did not start), and the run stops there: the drills after it would wait on the
same broken system.

    .venv/bin/python benchmarks/drills.py            # the full drills (make drills)
    .venv/bin/python benchmarks/drills.py --short    # a quick pass, as the test suite runs it
    .venv/bin/python benchmarks/drills.py --only redis --only pusher
    .venv/bin/python benchmarks/drills.py --instance NAME   # on a private instance started before
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from benchmarks.common import (
    OUT_DIR,
    PYTHON,
    ROOT,
    bench_environment,
    drop_namespace,
    ensure_customers,
    setup_django,
    uvicorn_command,
    wait_until,
)
from benchmarks.instance import Instance, InstanceError, server_ports
from benchmarks.load import Checks, Post, Poster, Role, Subscriber, Subscribers, System, by_room
from benchmarks.realtime import token_for, wait_for_groups
from realtime.stomp import Frame, FrameParser, encode

DB_NAME = "chat_drills"
DRILLS = ("kafka", "projector", "pusher", "web", "redis", "mongo", "postgres")
# The signal that crashes each server of the instance. PostgreSQL's crash is its immediate
# shutdown (SIGQUIT: every backend ends at once, recovery at the next start); a SIGKILL of the
# postmaster alone would leave its backends holding the data directory.
SERVICES = {"kafka": signal.SIGKILL, "redis": signal.SIGKILL, "mongo": signal.SIGKILL, "postgres": signal.SIGQUIT}


@dataclass(frozen=True)
class Mode:
    rooms: int
    rate: float  # posts per second
    warm_s: float  # load before the kill
    outage_s: float  # how long the target stays down
    after_s: float  # load after recovery, before the checks


FULL = Mode(rooms=20, rate=50, warm_s=5, outage_s=15, after_s=5)
SHORT = Mode(rooms=4, rate=20, warm_s=2, outage_s=3, after_s=1)
# How long a drill waits for the system to do each next thing before it fails. The slowest step
# that works, the full Kafka drill's catch-up, took 43 s on a loaded machine.
PATIENCE_S = 120.0
# The drills' own connection: a server that accepts the socket and never answers fails it in this long.
CONNECT_TIMEOUT_S = 5


class DrillFailed(Exception):
    """The system did not do what a drill waited for: the message names it, and for how long."""


def expect(
    what: str, condition: Callable[[], object], patience: float, missing: Callable[[], str] | None = None
) -> None:
    """Wait until `condition` holds, or raise DrillFailed naming `what` (and what is `missing`).

    A condition that raises counts as not yet (a server coming back fails in many ways); the
    last such error is named in the failure.
    """
    deadline = time.monotonic() + patience
    error = ""
    while True:
        try:
            if condition():
                return
        except Exception as exc:  # noqa: BLE001 - any failure of a check is a "not yet"
            error = f"{type(exc).__name__}: {exc}"[:300]
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    details = [missing() if missing else "", f"last error: {error}" if error else ""]
    raise DrillFailed(f"{what} did not happen within {patience:g} s" + "".join(f"; {d}" for d in details if d))


@dataclass
class Result:
    drill: str
    outage_s: float
    restart_s: float  # from starting the target to it answering
    recovery_s: float | None  # from starting the target to everything caught up; None: never
    posts: int
    accepted: int
    errors: int
    error_statuses: dict[str, int]  # HTTP status of the refused posts, "0" when none came
    lost_in_postgres: int
    lost_in_mongo: int
    projection_equals_rebuild: bool
    missed_deliveries: int
    duplicates: int
    reconnects: int
    # Sessions opened while the target was down (PostgreSQL: CONNECT and SUBSCRIBE need it), by
    # how each ended: "ERROR" (refused, then closed), "RECEIPT" (served) or what cut it.
    sessions_during_outage: dict[str, int]
    leaked_connections: int  # open by the web processes' gauges, beyond the subscribers' own
    leaked_subscriptions: int

    @property
    def passed(self) -> bool:
        return (
            self.recovery_s is not None
            and self.lost_in_postgres == 0
            and self.lost_in_mongo == 0
            and self.projection_equals_rebuild
            and self.missed_deliveries == 0
            and self.duplicates == 0
            and self.leaked_connections == 0
            and self.leaked_subscriptions == 0
        )


@dataclass
class Stuck:
    """A drill that could not make progress ("start": the system itself did not come up)."""

    drill: str
    failure: str
    passed: bool = False


# --- The system under test ---------------------------------------------------------------


def environment(instance: Instance) -> dict[str, str]:
    env = bench_environment(DB_NAME, instance.environment(), namespace="drill")
    keys = Path(env["CHAT_STATE_DIR"]) / "keys"
    env.update(
        MONGO_DB_NAME=f"{DB_NAME}_{uuid.uuid4().hex[:8]}",  # a fresh read store per run, dropped at the end
        CHAT_EMBEDDED_WORKERS="false",
        KAFKA_AUTO_OFFSET_RESET="latest",
        JWT_PRIVATE_KEY_PATH=str(keys / "private_key.pem"),
        JWT_PUBLIC_KEY_PATH=str(keys / "public_key.pem"),
    )
    return env


def the_system(env: dict[str, str], web_ports: list[int]) -> System:
    manage_py = [PYTHON, "manage.py"]
    return System(
        env,
        [
            *(Role(f"web-{'ab'[n]}", uvicorn_command(port), port) for n, port in enumerate(web_ports)),
            Role("relay", [*manage_py, "relay_outbox"]),
            Role("projector", [*manage_py, "consume_events", "projector"]),
            Role("pusher", [*manage_py, "consume_events", "pusher"]),
        ],
    )


def create_rooms(count: int) -> dict[int, list[int]]:
    """Fresh rooms of customer 1 and two bench customers each: room id -> the two listeners."""
    from accounts.models import Customer
    from chat_command.services import NewRoom, do_create_room

    usernames = [f"drill_{n}" for n in range(2 * count)]
    ensure_customers(usernames, lambda u: f"Drill {u[6:]}")
    ids = dict(Customer.objects.filter(username__in=usernames).values_list("username", "customer_id"))
    rooms = {}
    for n in range(count):
        pair = [ids[usernames[2 * n]], ids[usernames[2 * n + 1]]]
        rooms[do_create_room(1, NewRoom(f"drill {n}", pair)).room_id] = pair
    return rooms


# --- Faults ------------------------------------------------------------------------------


def kill(system: System, instance: Instance, drill: str) -> None:
    if drill in SERVICES:
        pid = instance.pid(drill)
        os.kill(pid, SERVICES[drill])
        # PostgreSQL's postmaster waits for its backends; 30 s is far beyond any seen.
        expect(
            f"the exit of {drill} (pid {pid}) after {SERVICES[drill].name}",
            lambda: not Path(f"/proc/{pid}").exists(),
            30,
        )
    else:
        system.kill(role_of(drill))


def restart(system: System, instance: Instance, drill: str, patience: float) -> None:
    if drill in SERVICES:
        try:
            instance.up(drill, timeout=max(patience, 120))  # scripts/services waits up to 90 s itself
        except InstanceError as exc:
            raise DrillFailed(f"the restart of {drill} did not happen: {exc}") from None
        if drill == "postgres":
            from django.db import connections

            connections.close_all()  # this process's checks need connections of the new server
    else:
        system.start(role_of(drill), timeout=patience)


def sessions_opened_now(ports: list[int], token: str, room_id: int, per_port: int = 2) -> Counter[str]:
    """Open STOMP sessions that CONNECT and SUBSCRIBE to a room; how each one ended."""
    endings: Counter[str] = Counter()
    for port in ports * per_port:
        try:
            with connect(f"ws://127.0.0.1:{port}/ws/chat", open_timeout=5, close_timeout=2) as ws:
                for command, headers in (
                    ("CONNECT", (("accept-version", "1.2"), ("jwt_token", token))),
                    ("SUBSCRIBE", (("id", "0"), ("destination", f"/topic/message/roomId/{room_id}"), ("receipt", "r"))),
                ):
                    ws.send(encode(Frame(command, headers, b"")).decode())
                parser, ending = FrameParser(), ""
                while ending not in ("ERROR", "RECEIPT"):
                    frames = [f for f in parser.feed(ws.recv(timeout=10)) if f is not None]
                    ending = next((f.command for f in frames if f.command in ("ERROR", "RECEIPT")), "")
                endings[ending] += 1
        except (OSError, TimeoutError, WebSocketException) as exc:
            endings[type(exc).__name__] += 1
    return endings


def leaks(ports: list[int], live: int) -> tuple[int, int]:
    """Connections and subscriptions the web processes count beyond the `live` subscribers' own."""
    totals = {"chat_websocket_connections": 0.0, "chat_stomp_subscriptions": 0.0}
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            continue  # a process that is not up holds nothing
        for name in totals:
            found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
            totals[name] += float(found.group(1)) if found else 0.0
    return int(totals["chat_websocket_connections"]) - live, int(totals["chat_stomp_subscriptions"]) - live


def role_of(drill: str) -> str:
    return "web-a" if drill == "web" else drill


# --- One drill ---------------------------------------------------------------------------


@dataclass
class Outage:
    """What happened around one kill: the posts, and when (perf_counter) each step came."""

    posts: list[Post]
    killed: float
    restarting: float
    up: float
    recovery_s: float  # from the restart until everything accepted before it had caught up

    @property
    def every(self) -> set[int]:
        return {p.message_id for p in self.posts if p.message_id is not None}


def outage_under_load(
    poster: Poster,
    mode: Mode,
    checks: Checks,
    patience: float,
    kill: Callable[[], None],
    restart: Callable[[], None],
    meanwhile: Callable[[], None] = lambda: None,
) -> Outage:
    """Post; kill; `meanwhile` while it is down; restart; wait until everything caught up.

    Fails (DrillFailed) when nothing is accepted before the kill, or when what was accepted does
    not reach the read store and every subscriber of its room within `patience` seconds.
    """
    poster.start()
    try:
        time.sleep(mode.warm_s)
        # A drill on a system that accepts nothing proves nothing (PostgreSQL out of connections).
        expect("a post accepted before the kill", poster.accepted, patience, lambda: refused(poster.posts))
        killed = time.perf_counter()
        kill()
        meanwhile()
        time.sleep(max(mode.outage_s - (time.perf_counter() - killed), 0))
        restarting = time.perf_counter()
        restart()
        up = time.perf_counter()
        before_restart = by_room([p for p in poster.accepted() if p.sent <= restarting])
        expect(
            f"every post accepted before the restart ({sum(map(len, before_restart.values()))}) in MongoDB"
            " and at every subscriber of its room",
            lambda: checks.caught_up(before_restart),
            patience,
            lambda: checks.behind(before_restart),
        )
        recovery_s = time.perf_counter() - restarting
        time.sleep(mode.after_s)
    finally:
        posts = poster.stop()
    accepted = by_room(posts)
    expect(
        f"every accepted post ({sum(map(len, accepted.values()))}) in MongoDB and at every subscriber of its room",
        lambda: checks.caught_up(accepted),
        patience,
        lambda: checks.behind(accepted),
    )
    return Outage(posts, killed, restarting, up, recovery_s)


def run_drill(
    drill: str, mode: Mode, system: System, instance: Instance, checks: Checks, ports: list[int], patience: float
) -> Result:
    """Kill and restart one target under load, wait for everything to catch up, check what was lost."""
    subscribers = checks.subscribers
    reconnects_before = sum(s.reconnects for s in subscribers.all)
    duplicates_before = subscribers.duplicates()
    token = token_for(1)
    print(f"drill {drill}: posting {mode.rate:g}/s, killing it after {mode.warm_s:g} s", flush=True)
    during_outage: Counter[str] = Counter()

    def opened_now() -> None:
        if drill == "postgres":
            during_outage.update(sessions_opened_now(ports, token, checks.rooms[0]))

    outage = outage_under_load(
        Poster(ports, token, checks.rooms, mode.rate),
        mode,
        checks,
        patience,
        kill=lambda: kill(system, instance, drill),
        restart=lambda: restart(system, instance, drill, patience),
        meanwhile=opened_now,
    )
    posts, every, accepted = outage.posts, outage.every, by_room(outage.posts)
    # Every subscriber holds one connection with one subscription; a leak never drains.
    live = len(subscribers.all)
    wait_until(lambda: leaks(ports, live) == (0, 0), timeout=min(patience, 30), interval=0.5)
    leaked_connections, leaked_subscriptions = leaks(ports, live)
    result = Result(
        drill=drill,
        outage_s=round(outage.restarting - outage.killed, 2),
        restart_s=round(outage.up - outage.restarting, 2),
        recovery_s=round(outage.recovery_s, 2),
        posts=len(posts),
        accepted=len(every),
        errors=len(posts) - len(every),
        error_statuses=dict(Counter(str(p.status) for p in posts if p.message_id is None)),
        lost_in_postgres=len(every - checks.in_postgres(every)),
        lost_in_mongo=len(every - checks.in_mongo),
        projection_equals_rebuild=checks.projection_equals_rebuild(timeout=min(patience, 60)),
        missed_deliveries=subscribers.missing(accepted),
        duplicates=subscribers.duplicates() - duplicates_before,
        reconnects=sum(s.reconnects for s in subscribers.all) - reconnects_before,
        sessions_during_outage=dict(during_outage),
        leaked_connections=leaked_connections,
        leaked_subscriptions=leaked_subscriptions,
    )
    print(f"  {'passed' if result.passed else 'FAILED'}: {json.dumps(asdict(result))}", flush=True)
    for line in subscribers.who_missed(accepted):
        print(f"    {line}", flush=True)
    return result


def refused(posts: Sequence[Post]) -> str:
    """How the posts so far were refused: "40 posts refused (503 x 38, no answer x 2)"."""
    statuses = Counter("no answer" if p.status == 0 else str(p.status) for p in list(posts) if p.message_id is None)
    listed = ", ".join(f"{status} x {count}" for status, count in statuses.most_common())
    return f"{sum(statuses.values())} posts refused ({listed})" if statuses else "no post answered yet"


def print_table(results: Sequence[Result | Stuck]) -> None:
    columns = (
        *("drill", "outage_s", "restart_s", "recovery_s", "accepted", "errors", "lost_in_postgres"),
        *("lost_in_mongo", "projection_equals_rebuild", "missed_deliveries", "duplicates", "reconnects"),
        *("leaked_connections", "leaked_subscriptions"),
    )
    print("\n" + "  ".join(f"{c:>{max(len(c), 7)}}" for c in (*columns, "passed")))
    for result in results:
        if isinstance(result, Stuck):
            print(f"{result.drill:>7}  FAILED: {result.failure}")
            continue
        values = [*(getattr(result, c) for c in columns), result.passed]
        cells = ["never" if v is None else ("yes" if v is True else "NO" if v is False else v) for v in values]
        print("  ".join(f"{v!s:>{max(len(c), 7)}}" for v, c in zip(cells, (*columns, "passed"), strict=True)))


def drop_read_store(name: str) -> None:
    import pymongo

    from infrastructure import backends

    with pymongo.timeout(10):
        backends.mongo_db().client.drop_database(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="small rooms, rate and outages (the CI run)")
    parser.add_argument("--only", action="append", choices=DRILLS, help="run only these drills (repeatable)")
    parser.add_argument(
        "--instance", metavar="NAME", help="run on this private instance (benchmarks/instance.py) and leave it running"
    )
    parser.add_argument(
        "--patience", type=float, default=PATIENCE_S, help=f"seconds to wait for each step ({PATIENCE_S:g})"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the roles and the instance on the way out
    mode = SHORT if args.short else FULL
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    instance = Instance.attach(args.instance) if args.instance else Instance.create("drills")
    results: list[Result | Stuck] = []
    try:
        started = time.perf_counter()
        instance.up()
        print(f"instance {instance.name}: services up in {time.perf_counter() - started:.1f} s", flush=True)
        results = run_drills(args.only or DRILLS, mode, instance, args.patience)
    except (InstanceError, subprocess.SubprocessError, psycopg.OperationalError) as exc:
        # The instance's services, or the database set-up (migrate, keys, seed), failed or hung.
        print(f"drills FAILED: the services or the database did not come up: {exc}", flush=True)
        results = [Stuck("start", str(exc))]
    finally:
        if not args.instance:
            instance.remove()
    print_table(results)
    path = OUT_DIR / ("drills-short.json" if args.short else "drills.json")
    path.write_text(json.dumps([{**asdict(r), "passed": r.passed} for r in results], indent=2))
    print(f"(written to {path.relative_to(ROOT)})")
    return 0 if results and all(r.passed for r in results) else 1


def run_drills(drills: Sequence[str], mode: Mode, instance: Instance, patience: float) -> list[Result | Stuck]:
    """Start the system on the instance, run each drill in turn, stop everything the run started.

    The first drill that cannot make progress ends the run: the next would wait on the same system.
    """
    env = environment(instance)
    setup_django(env)
    from django.conf import settings

    settings.DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = CONNECT_TIMEOUT_S
    first = server_ports(2)  # the web drill restarts a server on its port
    ports = [first, first + 1]
    system = the_system(env, ports)
    results: list[Result | Stuck] = []
    subscribers: Subscribers | None = None
    try:
        try:
            subscribers = start_system(system, env["KAFKA_GROUP_PREFIX"], mode, ports, patience)
        except (DrillFailed, RuntimeError) as exc:
            print(f"drills FAILED: the system did not start: {exc}", flush=True)
            return [Stuck("start", str(exc))]
        checks = Checks(list(subscribers.rooms()), subscribers)
        for drill in drills:
            try:
                results.append(run_drill(drill, mode, system, instance, checks, ports, patience))
            except DrillFailed as exc:
                print(f"drill {drill} FAILED: {exc}", flush=True)
                results.append(Stuck(drill, str(exc)))
                break
    finally:
        tidy("stopping the subscribers", subscribers.stop if subscribers else lambda: None)
        tidy("stopping the roles", system.stop_all)
        tidy("restarting what is down", lambda: instance.up(timeout=180))  # never leave a server down
        tidy("dropping the read store", lambda: drop_read_store(env["MONGO_DB_NAME"]))
        tidy("dropping the namespace", lambda: drop_namespace(env))
    return results


def start_system(system: System, group_prefix: str, mode: Mode, ports: list[int], patience: float) -> Subscribers:
    """Start the roles, wait for their consumer groups, create the rooms and subscribe to them."""
    system.start_all(timeout=max(patience, 60))  # a role's first start imports everything
    wait_for_groups(group_prefix, timeout=max(patience, 90))
    rooms = create_rooms(mode.rooms)
    subscribers = Subscribers(
        [
            Subscriber(customer, room, token_for(customer), ports if n == 0 else ports[::-1])
            for room, pair in rooms.items()
            for n, customer in enumerate(pair)
        ]
    )
    subscribers.start(timeout=patience)
    return subscribers


def tidy(what: str, step: Callable[[], object]) -> None:
    """Run one step of the clean-up; report its failure rather than hide the run's own."""
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - whatever failed, the next steps still run
        print(f"clean-up: {what} failed: {type(exc).__name__}: {exc}"[:2000], file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

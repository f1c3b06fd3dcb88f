"""Cluster drills: kill a node of each clustered part under steady load with live subscribers.

The system runs in the clustered topology on a private instance of its own (benchmarks/instance.py,
`cluster=True`): three Kafka brokers (replication factor 3, min.insync.replicas 2), a Redis Cluster
of three primaries and three replicas, PostgreSQL and FerretDB; and, through `scripts/prod`, nginx
in front of two api processes and three web processes, two relays (one stands by), two projectors
and two pushers, in a database and a namespace of the run's own. Posts go through nginx to the api
processes; two subscribers per room listen to `/topic/message/roomId/{id}` through nginx and, when
cut off, reconnect through nginx (to whichever web process it picks) with `since-message-id`.

The drills, in turn, each under open-loop posts across the rooms:

- `kafka`: SIGKILL the broker that leads the most partitions of the run's topics; start it again
  after the outage (it rejoins the ISR);
- `redis`: SIGKILL a Redis primary; its replica takes over; start the old one again, which rejoins
  as a replica;
- `consumers`: SIGKILL one projector and one pusher mid-stream; the others take their partitions;
  start them again after the outage;
- `web`: SIGKILL one web process; its clients reconnect through nginx and recover.

For each: the posts accepted, lost (in PostgreSQL or the read store: must be 0), deliveries
missed and delivered twice (must be 0), whether the projection equals a rebuild from the logged
events, how long until sends succeeded again (from the kill to the first post accepted after the
last refused one) and until live delivery resumed (from the kill to the moment every subscriber
had received a message posted after the kill), and the longest a message posted after the kill
waited for the last subscriber of its room. The exit status is 1 if any drill failed.

    .venv/bin/python benchmarks/drills_cluster.py            # the four drills (make drills-cluster)
    .venv/bin/python benchmarks/drills_cluster.py --short    # a quick pass
    .venv/bin/python benchmarks/drills_cluster.py --short --only consumers   # as the test suite runs it
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import OUT_DIR, ROOT, drop_namespace, setup_django
from benchmarks.drills import (
    PATIENCE_S,
    DrillFailed,
    Mode,
    Stuck,
    create_rooms,
    drop_read_store,
    expect,
    leaks,
    outage_under_load,
    tidy,
)
from benchmarks.instance import Instance, InstanceError, server_ports
from benchmarks.load import Checks, Post, Poster, Subscriber, Subscribers, by_room
from benchmarks.realtime import token_for, wait_for_groups

DRILLS = ("kafka", "redis", "consumers", "web")
FULL = Mode(rooms=20, rate=50, warm_s=5, outage_s=15, after_s=5)
SHORT = Mode(rooms=4, rate=20, warm_s=2, outage_s=4, after_s=1)
# The processes of the run (scripts/prod): how many of each role.
SHAPE = {
    "CHAT_PROD_APIS": "2",
    "CHAT_PROD_WEBS": "3",
    "CHAT_PROD_RELAYS": "2",
    "CHAT_PROD_PROJECTORS": "2",
    "CHAT_PROD_PUSHERS": "2",
}
PROD = ROOT / "scripts" / "prod"
PROD_UP_TIMEOUT_S = 300


@dataclass
class Result:
    drill: str
    killed: list[str]
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
    sends_resumed_s: float  # from the kill to the first post accepted after the last one refused
    live_resumed_s: float | None  # from the kill until every subscriber had a message posted after it
    worst_delivery_s: float | None  # the longest a post sent after the kill waited for its last subscriber
    recovery_s: float  # from the restart to everything accepted so far projected and delivered
    leaked_connections: int
    leaked_subscriptions: int

    @property
    def passed(self) -> bool:
        return (
            self.accepted > 0
            and self.lost_in_postgres == 0
            and self.lost_in_mongo == 0
            and self.projection_equals_rebuild
            and self.missed_deliveries == 0
            and self.duplicates == 0
            and self.live_resumed_s is not None
            and self.leaked_connections == 0
            and self.leaked_subscriptions == 0
        )


# --- The system under test ---------------------------------------------------------------


class ProdRun:
    """The roles behind nginx, started by scripts/prod on the instance, in the run's own database."""

    def __init__(self, instance: Instance, namespace: str) -> None:
        # nginx's port, then the web processes' and the api processes' (scripts/prod's defaults).
        self.port = server_ports(1 + int(SHAPE["CHAT_PROD_WEBS"]) + int(SHAPE["CHAT_PROD_APIS"]))
        self.database = namespace.replace("-", "_")
        self.directory = ROOT / ".local" / "prod" / str(self.port)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CHAT_PROD_")},
            **instance.variables(),
            **SHAPE,
            "CHAT_PROD_PORT": str(self.port),
            "CHAT_PROD_DB": self.database,
            "CHAT_NAMESPACE": namespace,
            "KAFKA_GROUP_PREFIX": f"{namespace}.chat",
            "LOG_LEVEL": "INFO",
        }

    def script(self, *args: str, timeout: float = 120) -> str:
        run = subprocess.run(
            [str(PROD), *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if run.returncode != 0:
            raise RuntimeError(f"scripts/prod {' '.join(args)} failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        return run.stdout

    def up(self) -> None:
        self.script("up", timeout=PROD_UP_TIMEOUT_S)

    def environment(self) -> dict[str, str]:
        """What the run's processes have: the drill's own process reads and writes as they do."""
        found = {}
        for line in self.script("env").splitlines():
            for word in shlex.split(line.removeprefix("export ")):
                name, _, value = word.partition("=")
                found[name] = value
        return {**self.env, **found}

    def web_ports(self) -> list[int]:
        return [self.port + n for n in range(1, int(SHAPE["CHAT_PROD_WEBS"]) + 1)]

    def kill(self, name: str) -> None:
        """SIGKILL the process and every process of its group (granian's workers included)."""
        pid = int((self.directory / "run" / f"{name}.pid").read_text())
        os.killpg(pid, signal.SIGKILL)
        expect(f"the exit of {name} (pid {pid})", lambda: not Path(f"/proc/{pid}").exists(), 30)

    def start(self, name: str) -> None:
        self.script("start", name)

    def down(self) -> None:
        """Stop every process; keep their logs (in .local/bench/drills-cluster-logs), drop the rest."""
        try:
            self.script("down", timeout=180)
        finally:
            kept = OUT_DIR / "drills-cluster-logs"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(self.directory / "logs", kept, dirs_exist_ok=True)
            shutil.rmtree(self.directory, ignore_errors=True)


# --- Faults ------------------------------------------------------------------------------


def busiest_broker(namespace: str) -> int:
    """The id of the broker that leads the most partitions of the run's topics."""
    from infrastructure.backends import kafka_admin

    leaders: Counter[int] = Counter()
    for name, topic in kafka_admin().list_topics(timeout=10).topics.items():
        if name.startswith(f"{namespace}."):
            leaders.update(partition.leader for partition in topic.partitions.values())
    if not leaders:
        raise DrillFailed(f"no topic of {namespace} has a leader")
    return leaders.most_common(1)[0][0]


def a_redis_primary(instance: Instance) -> str:
    """The node name (redis-N) of a Redis primary that holds slots."""
    from infrastructure.backends import redis_client

    primary = redis_client().get_primaries()[0]  # type: ignore[attr-defined]
    return instance.node_of_port("redis", int(primary.port))


class Fault:
    """What a drill kills, and how it starts it again."""

    def __init__(self, drill: str, run: ProdRun, instance: Instance, namespace: str) -> None:
        self.drill, self.run, self.instance = drill, run, instance
        if drill == "kafka":
            self.targets = [f"kafka-{busiest_broker(namespace)}"]
        elif drill == "redis":
            self.targets = [a_redis_primary(instance)]
        elif drill == "consumers":
            self.targets = ["projector-2", "pusher-2"]
        else:
            self.targets = ["web-1"]

    def kill(self) -> None:
        for target in self.targets:
            if self.drill in ("kafka", "redis"):
                self.instance.kill(target)
            else:
                self.run.kill(target)

    def restart(self, patience: float) -> None:
        for target in self.targets:
            if self.drill in ("kafka", "redis"):
                try:
                    self.instance.up(target, timeout=max(patience, 120))
                except InstanceError as exc:
                    raise DrillFailed(f"the restart of {target} did not happen: {exc}") from None
            else:
                self.run.start(target)


# --- One drill ---------------------------------------------------------------------------


def sends_resumed(posts: Sequence[Post], killed: float) -> float:
    """Seconds from the kill to the first post accepted after the last one refused (0: none refused)."""
    after = sorted((p for p in posts if p.sent >= killed), key=lambda p: p.sent)
    refused_at = [p.sent for p in after if p.message_id is None]
    if not refused_at:
        return 0.0
    later = [p.sent for p in after if p.message_id is not None and p.sent > refused_at[-1]]
    return round((later[0] if later else refused_at[-1]) - killed, 2)


def live_resumed(subscribers: Subscribers, posts: Sequence[Post], killed: float) -> float | None:
    """Seconds from the kill until every subscriber had received a message posted after it."""
    sent_after = {p.message_id for p in posts if p.sent >= killed and p.message_id is not None}
    firsts = []
    for subscriber in subscribers.all:
        arrivals = [t for m, t in subscriber.arrivals.items() if m in sent_after]
        if not arrivals:
            return None
        firsts.append(min(arrivals))
    return round(max(firsts) - killed, 2)


def worst_delivery(subscribers: Subscribers, posts: Sequence[Post], killed: float) -> float | None:
    """The longest a message posted after the kill took to reach the last subscriber of its room."""
    listeners: dict[int, list[Subscriber]] = {}
    for subscriber in subscribers.all:
        listeners.setdefault(subscriber.room_id, []).append(subscriber)
    delays = []
    for post in posts:
        if post.sent < killed or post.message_id is None:
            continue
        arrivals = [s.arrivals.get(post.message_id) for s in listeners.get(post.room_id, [])]
        if None in arrivals:
            return None
        delays.append(max(a for a in arrivals if a is not None) - post.sent)
    return round(max(delays), 2) if delays else None


def run_drill(fault: Fault, mode: Mode, run: ProdRun, checks: Checks, token: str, patience: float) -> Result:
    """Kill the fault's targets under load, start them again, wait until everything caught up, check."""
    subscribers = checks.subscribers
    reconnects_before = sum(s.reconnects for s in subscribers.all)
    duplicates_before = subscribers.duplicates()
    print(f"drill {fault.drill}: posting {mode.rate:g}/s, killing {', '.join(fault.targets)} after {mode.warm_s:g} s")
    poster = Poster([run.port], token, checks.rooms, mode.rate)
    outage = outage_under_load(poster, mode, checks, patience, fault.kill, lambda: fault.restart(patience))
    posts, every, accepted, killed = outage.posts, outage.every, by_room(outage.posts), outage.killed
    live = len(subscribers.all)
    expect("the web processes' gauges back to the subscribers' own", lambda: leaks(run.web_ports(), live) == (0, 0), 30)
    leaked_connections, leaked_subscriptions = leaks(run.web_ports(), live)
    result = Result(
        drill=fault.drill,
        killed=fault.targets,
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
        sends_resumed_s=sends_resumed(posts, killed),
        live_resumed_s=live_resumed(subscribers, posts, killed),
        worst_delivery_s=worst_delivery(subscribers, posts, killed),
        recovery_s=round(outage.recovery_s, 2),
        leaked_connections=leaked_connections,
        leaked_subscriptions=leaked_subscriptions,
    )
    print(f"  {'passed' if result.passed else 'FAILED'}: {json.dumps(asdict(result))}", flush=True)
    for line in subscribers.who_missed(accepted):
        print(f"    {line}", flush=True)
    return result


# --- The run -----------------------------------------------------------------------------


def run_drills(drills: Sequence[str], mode: Mode, instance: Instance, patience: float) -> list[Result | Stuck]:
    """Start the clustered system on the instance, run each drill in turn, stop everything after."""
    namespace = f"drillc-{uuid.uuid4().hex[:8]}"
    run = ProdRun(instance, namespace)
    env: dict[str, str] = {}
    subscribers: Subscribers | None = None
    results: list[Result | Stuck] = []
    try:
        try:
            started = time.perf_counter()
            run.up()
            print(f"the roles are up behind nginx in {time.perf_counter() - started:.1f} s", flush=True)
            env = run.environment()
            setup_django(env, seed=False)
            wait_for_groups(env["KAFKA_GROUP_PREFIX"], timeout=max(patience, 90))
            rooms = create_rooms(mode.rooms)
            subscribers = Subscribers(
                [
                    Subscriber(customer, room, token_for(customer), [run.port])
                    for room, pair in rooms.items()
                    for customer in pair
                ]
            )
            subscribers.start(timeout=patience)
        except (DrillFailed, RuntimeError, subprocess.SubprocessError) as exc:
            print(f"cluster drills FAILED: the system did not start: {exc}", flush=True)
            return [Stuck("start", str(exc))]
        checks = Checks(list(subscribers.rooms()), subscribers)
        token = token_for(1)
        for drill in drills:
            try:
                results.append(run_drill(Fault(drill, run, instance, namespace), mode, run, checks, token, patience))
            except DrillFailed as exc:
                print(f"drill {drill} FAILED: {exc}", flush=True)
                results.append(Stuck(drill, str(exc)))
                break
    finally:
        tidy("stopping the subscribers", subscribers.stop if subscribers else lambda: None)
        tidy("stopping the roles", run.down)
        tidy("restarting what is down", lambda: instance.up(timeout=180))
        if env:
            tidy("dropping the read store", lambda: drop_read_store(env["MONGO_DB_NAME"]))
            tidy("dropping the namespace", lambda: drop_namespace(env))
    return results


def print_table(results: Sequence[Result | Stuck]) -> None:
    columns = (
        *("drill", "accepted", "errors", "lost_in_postgres", "lost_in_mongo", "projection_equals_rebuild"),
        *("missed_deliveries", "duplicates", "reconnects", "sends_resumed_s", "live_resumed_s", "worst_delivery_s"),
        "recovery_s",
    )
    print("\n" + "  ".join(f"{c:>{max(len(c), 7)}}" for c in (*columns, "passed")))
    for result in results:
        if isinstance(result, Stuck):
            print(f"{result.drill:>7}  FAILED: {result.failure}")
            continue
        values = [*(getattr(result, c) for c in columns), result.passed]
        cells = ["never" if v is None else ("yes" if v is True else "NO" if v is False else v) for v in values]
        print("  ".join(f"{v!s:>{max(len(c), 7)}}" for v, c in zip(cells, (*columns, "passed"), strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="few rooms, a low rate and short outages")
    parser.add_argument("--only", action="append", choices=DRILLS, help="run only these drills (repeatable)")
    parser.add_argument(
        "--patience", type=float, default=PATIENCE_S, help=f"seconds to wait for each step ({PATIENCE_S:g})"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the roles and the instance on the way out
    mode = SHORT if args.short else FULL
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    instance = Instance.create("drills-cluster", cluster=True)
    results: list[Result | Stuck] = []
    try:
        started = time.perf_counter()
        instance.up()
        print(f"instance {instance.name}: clustered services up in {time.perf_counter() - started:.1f} s", flush=True)
        results = run_drills(args.only or DRILLS, mode, instance, args.patience)
    except InstanceError as exc:
        print(f"cluster drills FAILED: the services did not come up: {exc}", flush=True)
        results = [Stuck("start", str(exc))]
    finally:
        instance.remove()
    print_table(results)
    path = OUT_DIR / ("drills-cluster-short.json" if args.short else "drills-cluster.json")
    path.write_text(json.dumps([{**asdict(r), "passed": r.passed} for r in results], indent=2))
    print(f"(written to {path.relative_to(ROOT)})")
    return 0 if results and all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

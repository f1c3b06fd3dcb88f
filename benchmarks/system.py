"""The system under test as the pipeline, peer and sustained benchmarks run it.

The production roles in processes of their own against the real services, in a database, a
read store and a namespace of the run's own (`system_environment`, `the_system`, `drop_system`);
rooms for them to serve (`create_rooms`); and every process's CPU (`meter_of`), the load
client's reported apart.
"""

from __future__ import annotations

import functools
import json
import resource
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import loadgen
from benchmarks.common import (
    OUT_DIR,
    PYTHON,
    ROOT,
    api_command,
    bench_environment,
    drop_database,
    drop_namespace,
    ensure_customers,
    progress,
    uvicorn_command,
)
from benchmarks.cpu import Meter, spent, tree_seconds
from benchmarks.instance import pid_in, service_pid_file
from benchmarks.load import Role, System

CPU_TARGET_MS = 3.0  # summed over the system's processes, per accepted message
P99_TARGET_MS = 100.0  # POST -> MESSAGE
LATE_MS = 10.0  # a post that went out this much after its time on the schedule counts as late
POOL = 200  # bench customers; each room takes CLIENTS/ROOMS of them besides its creator
LOAD_CLIENT = "load client (apart)"
# Backends of other databases on the same server: not this system's, left out of its total.
OTHER_DATABASES = "postgresql: other databases (apart)"
APART = (LOAD_CLIENT, OTHER_DATABASES)


def create_rooms(rooms: int, per_room: int) -> dict[int, list[int]]:
    """Fresh rooms of customer 1 and `per_room` bench customers: room id -> its listeners."""
    from accounts.models import Customer
    from chat_command.services import NewRoom, do_create_room

    usernames = [f"sustained_{n}" for n in range(POOL)]
    ensure_customers(usernames, lambda u: f"Sustained {u[10:]}")
    pool = sorted(Customer.objects.filter(username__in=usernames).values_list("customer_id", flat=True))
    created = {}
    with progress(rooms, "creating rooms", "room") as bar:
        for n in range(rooms):
            listeners = [pool[(n * per_room + k) % POOL] for k in range(per_room)]
            created[do_create_room(1, NewRoom(f"sustained {n}", listeners)).room_id] = listeners
            bar.update()
    return created


def system_environment(db_name: str, **settings: str) -> dict[str, str]:
    """For `the_system`: a database, a read store and a namespace of the run's own (`drop_system`
    drops them), the roles in processes of their own, consumer groups that start at the topics'
    ends; `settings` on top.

    A database kept from run to run would make every run slower than the last: the same bench
    customers, in the rooms of every earlier run, announce their presence to all of them.
    """
    run = f"{db_name}_{uuid.uuid4().hex[:8]}"
    env = bench_environment(db_name, database=run)
    keys = Path(env["CHAT_STATE_DIR"]) / "keys"
    env.update(
        MONGO_DB_NAME=run,
        CHAT_EMBEDDED_WORKERS="false",
        KAFKA_AUTO_OFFSET_RESET="latest",
        JWT_PRIVATE_KEY_PATH=str(keys / "private_key.pem"),
        JWT_PUBLIC_KEY_PATH=str(keys / "public_key.pem"),
        **settings,
    )
    return env


def drop_system(env: dict[str, str]) -> None:
    """Drop what `system_environment` made for a run whose processes have stopped."""
    from django.db import connections

    from infrastructure import backends

    backends.mongo_db().client.drop_database(env["MONGO_DB_NAME"])
    connections.close_all()
    drop_database(env)
    drop_namespace(env)


def the_system(env: dict[str, str], http_port: int, ws_ports: list[int]) -> System:
    return System(
        env,
        [
            Role("web-http", api_command(http_port), http_port),
            *(Role(f"web-ws-{'ab'[n]}", uvicorn_command(port), port) for n, port in enumerate(ws_ports)),
            Role("relay", [PYTHON, "manage.py", "relay_outbox"]),
            Role("projector", [PYTHON, "manage.py", "consume_events", "projector"]),
            Role("pusher", [PYTHON, "manage.py", "consume_events", "pusher"]),
        ],
    )


def consumers_idle() -> bool:
    """Whether every consumer role has committed everything on its topics, asked now."""
    from infrastructure.messaging import consumers

    try:
        return all(lag == 0 for lag in consumers.lag_by_role().values())
    except Exception:  # noqa: BLE001 - not known to be idle
        return False


def services_home(env: dict[str, str]) -> Path:
    """Where the run's services keep their pid files (scripts/services' home)."""
    return Path(env.get("CHAT_SERVICES_HOME") or ROOT / ".local")


def meter_of(env: dict[str, str], system: Any) -> Meter:
    """Every process of the system: the roles, and the services of the run's home."""
    home = services_home(env)
    commands_db = urlsplit(env["DATABASE_URL"]).path.lstrip("/")
    read_store_db = urlsplit(env.get("FERRETDB_POSTGRES_URL", "")).path.lstrip("/")

    def postgres_group(database: str | None) -> str:
        if database is None:
            return "postgresql: server"  # its own processes, and backends that ended meanwhile
        if database == commands_db:
            return "postgresql: commands"
        if database == read_store_db:
            return "postgresql: read store (FerretDB's)"
        return OTHER_DATABASES

    trees: dict[str, Callable[[], int | None]] = {name: functools.partial(system.pid, name) for name in system.roles}
    for service, label in (("mongo", "ferretdb"), ("kafka", "kafka"), ("redis", "redis")):
        trees[label] = functools.partial(pid_in, service_pid_file(home, service))
    postmaster = pid_in(service_pid_file(home, "postgres"))
    return Meter(trees, (postmaster, postgres_group) if postmaster else None)


def load_client_seconds(subscribers: loadgen.Subscribers) -> float:
    """CPU of the load client so far: the subscribe process, the finished post processes, this one."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    return tree_seconds(subscribers.pid) + children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime


class CpuAccount:
    """Every process's CPU from its making on, the load client's apart.

    Until `per_message`, the meter is read every `WATCH_EVERY_S` as well, so a PostgreSQL backend
    that ends meanwhile counts under its database with all but its last second (`Meter`).
    """

    WATCH_EVERY_S = 1.0

    def __init__(self, meter: Meter, subscribers: loadgen.Subscribers) -> None:
        self.meter, self.subscribers = meter, subscribers
        self.before, self.client_before = meter.read(), load_client_seconds(subscribers)
        self.done = threading.Event()
        threading.Thread(target=self._watch, name="cpu-watch", daemon=True).start()

    def _watch(self) -> None:
        while not self.done.wait(self.WATCH_EVERY_S):
            self.meter.read()

    def client_seconds(self) -> float:
        """The load client's CPU seconds since."""
        return load_client_seconds(self.subscribers) - self.client_before

    def per_message(self, count: int) -> dict[str, float]:
        """CPU milliseconds per message of each process since, for `count` messages."""
        self.done.set()
        per_message = {name: s * 1000 / max(count, 1) for name, s in spent(self.before, self.meter.read()).items()}
        per_message[LOAD_CLIENT] = self.client_seconds() * 1000 / max(count, 1)
        return per_message


def system_total(by_process: dict[str, float]) -> float:
    """A figure of every process summed over the system's: the load client and other databases
    left out."""
    return sum(v for name, v in by_process.items() if name not in APART)


def print_cpu_table(table: dict[float, dict[str, float]], benchmark: str) -> None:
    """Processes down, rates across: CPU milliseconds per accepted message; also written to
    `<benchmark>_cpu.json`."""
    rates = list(table)
    names = sorted({n for column in table.values() for n in column if n not in APART})
    names.sort(key=lambda n: -table[rates[-1]].get(n, 0.0))
    print("\nCPU ms per accepted message, by process")
    print(f"{'process':<40}" + "".join(f"{f'{r:g}/s':>10}" for r in rates))
    for name in [*names, "= the system", *APART]:
        if name == "= the system":
            values = [system_total(table[r]) for r in rates]
        else:
            values = [table[r].get(name, 0.0) for r in rates]
        print(f"{name:<40}" + "".join(f"{v:>10.2f}" for v in values))
    path = OUT_DIR / f"{benchmark}_cpu.json"
    path.write_text(json.dumps({f"{r:g}": column for r, column in table.items()}, indent=2))
    print(f"(written to {path.relative_to(ROOT)})")

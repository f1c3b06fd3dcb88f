"""A private instance of the backing services, for drills and tests that stop or crash them.

`scripts/services` runs one instance per home (CHAT_SERVICES_HOME) on the ports it is given. An
`Instance` is such a home under `.local/instances/<name>`, with free ports of its own: what a
drill kills there is never a service that anyone else uses. Its home records its ports and the
process that owns it, so `Instance.attach` finds it again and `prune` removes what a run that
died left behind.

    with Instance.create("drills") as instance:    # started; stopped and removed at the end
        env = instance.environment()                # DATABASE_URL, REDIS_URL, ... of this instance
        os.kill(instance.pid("redis"), signal.SIGKILL)
        instance.up("redis")

    with Instance.create("drills", cluster=True) as instance:    # three brokers, a six-node Redis Cluster
        instance.kill("kafka-2")                    # one node: kafka-1..3, redis-1..6
        instance.up("kafka-2")

    .venv/bin/python benchmarks/instance.py list             # the private instances, and their owners
    .venv/bin/python benchmarks/instance.py remove NAME      # stop one and delete its data
    .venv/bin/python benchmarks/instance.py prune            # remove those whose owner has exited
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT / ".local" / "instances"
SCRIPT = ROOT / "scripts" / "services"
SERVICES = ("postgres", "redis", "kafka", "mongo")
# The variable scripts/services reads each port from.
PORT_VARIABLES = (
    "CHAT_PG_PORT",
    "CHAT_REDIS_PORT",
    "CHAT_KAFKA_PORT",
    "CHAT_KAFKA_CONTROLLER_PORT",
    "CHAT_MONGO_PORT",
)
# Below Linux's ephemeral range (32768-60999), so no client's outgoing connection holds one of
# them while a drill restarts the service that listens there.
PORT_RANGE = (20000, 32000)
# The cluster topology's nodes, and the first of the consecutive ports each engine's nodes take:
# a broker and its controller each (scripts/services puts the controllers after the brokers).
KAFKA_BROKERS = 3
REDIS_NODES = 6
KAFKA_CLUSTER_PORT = "CHAT_KAFKA_CLUSTER_PORT"
REDIS_CLUSTER_PORT = "CHAT_REDIS_CLUSTER_PORT"
# A Redis Cluster node also listens on its port + 10000 (its cluster bus): the nodes start low
# enough that the bus stays below the ephemeral range too.
REDIS_BUS_OFFSET = 10000
REDIS_CLUSTER_PORT_RANGE = (PORT_RANGE[0], 32768 - REDIS_BUS_OFFSET - REDIS_NODES)
KILL_TIMEOUT_S = 30.0
# Generous: a first `up` may build the FerretDB launcher and fetch the Kafka jars.
UP_TIMEOUT_S = 600.0
DOWN_TIMEOUT_S = 180.0


class InstanceError(RuntimeError):
    """scripts/services failed or did not finish for a private instance."""


@dataclass(frozen=True)
class Instance:
    """One home of scripts/services with ports of its own."""

    name: str
    ports: dict[str, int]  # PORT_VARIABLES (and, for a cluster, the two cluster ports) -> port
    cluster: bool = False

    @property
    def home(self) -> Path:
        return INSTANCES / self.name

    @classmethod
    def create(cls, prefix: str, settings: dict[str, str] | None = None, *, cluster: bool = False) -> Instance:
        """A new home named `<prefix>-<hex>` on free ports, recorded as owned by this process.

        With `cluster`, the home runs the cluster topology: three Kafka brokers and a Redis Cluster.
        """
        prune()
        ports = free_ports(len(PORT_VARIABLES))
        if cluster:
            taken = set(ports.values())
            ports[KAFKA_CLUSTER_PORT] = free_block(KAFKA_BROKERS * 2, PORT_RANGE, taken)
            taken.update(range(ports[KAFKA_CLUSTER_PORT], ports[KAFKA_CLUSTER_PORT] + KAFKA_BROKERS * 2))
            ports[REDIS_CLUSTER_PORT] = free_block(REDIS_NODES, REDIS_CLUSTER_PORT_RANGE, taken, (0, REDIS_BUS_OFFSET))
        instance = cls(f"{prefix}-{uuid.uuid4().hex[:8]}", ports, cluster)
        instance.home.mkdir(parents=True)
        record = {
            "ports": instance.ports,
            "settings": settings or {},
            "topology": "cluster" if cluster else "single",
            "owner": process_identity(os.getpid()),
        }
        (instance.home / "instance.json").write_text(json.dumps(record, indent=2))
        return instance

    @classmethod
    def attach(cls, name: str) -> Instance:
        """The instance of that name, as its home records it."""
        record = json.loads((INSTANCES / name / "instance.json").read_text())
        return cls(name, record["ports"], record.get("topology") == "cluster")

    def variables(self) -> dict[str, str]:
        """What scripts/services needs to address this instance, and the settings it was created with."""
        record = json.loads((self.home / "instance.json").read_text())
        return {
            "CHAT_SERVICES_HOME": str(self.home),
            "CHAT_TOPOLOGY": "cluster" if self.cluster else "single",
            **{name: str(port) for name, port in self.ports.items()},
            **record["settings"],
        }

    def services(self, *args: str, timeout: float) -> str:
        """Run scripts/services on this instance; its standard output."""
        env = {**os.environ, **self.variables()}
        try:
            run = subprocess.run(
                [str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            raise InstanceError(f"scripts/services {' '.join(args)} on {self.name} took over {timeout:g} s") from exc
        if run.returncode != 0:
            command = f"scripts/services {' '.join(args)} on {self.name}"
            raise InstanceError(f"{command} failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        return run.stdout

    def up(self, *services: str, timeout: float = UP_TIMEOUT_S) -> None:
        """Start the services (all four by default) that are not running, and wait until they answer."""
        self.services("up", *services, timeout=timeout)

    def down(self, *services: str, timeout: float = DOWN_TIMEOUT_S) -> None:
        self.services("down", *services, timeout=timeout)

    def environment(self) -> dict[str, str]:
        """The variables of `scripts/services env` for this instance (DATABASE_URL, REDIS_URL, ...)."""
        found = {}
        for line in self.services("env", timeout=30).splitlines():
            for word in shlex.split(line.removeprefix("export ")):
                name, _, value = word.partition("=")
                found[name] = value
        return found

    def nodes(self, engine: str) -> list[str]:
        """The nodes of an engine in the cluster topology: kafka-1..3, or redis-1..6."""
        count = {"kafka": KAFKA_BROKERS, "redis": REDIS_NODES}[engine]
        return [f"{engine}-{number}" for number in range(1, count + 1)]

    def node_port(self, node: str) -> int:
        """The port a node of the cluster topology listens on (a broker: its PLAINTEXT listener)."""
        engine, number = self._node(node)
        return self.ports[KAFKA_CLUSTER_PORT if engine == "kafka" else REDIS_CLUSTER_PORT] + number - 1

    def node_of_port(self, engine: str, port: int) -> str:
        """The node of an engine that listens on this port (as a client names a node: by address)."""
        for node in self.nodes(engine):
            if self.node_port(node) == port:
                return node
        raise InstanceError(f"no {engine} node of {self.name} listens on port {port}")

    def pid_file(self, service: str) -> Path:
        """Where scripts/services keeps the pid of a service, or of a node of the cluster, of this instance."""
        if self.cluster and service in ("redis", "kafka"):
            raise InstanceError(f"{self.name} runs {service} as a cluster: name one node of {self.nodes(service)}")
        if service not in SERVICES:
            self._node(service)
            return self.home / "run" / f"{service}.pid"
        return service_pid_file(self.home, service)

    def pid(self, service: str) -> int:
        """The pid of a running service or node of this instance (PostgreSQL: its postmaster)."""
        pid = pid_in(self.pid_file(service))
        if pid is None:
            raise InstanceError(f"{service} of {self.name} is not running (no pid in {self.pid_file(service)})")
        return pid

    def kill(self, service: str, sig: int = signal.SIGKILL, timeout: float = KILL_TIMEOUT_S) -> None:
        """Send a service or node a signal (a crash by default), and wait until a fatal one has ended it."""
        pid = self.pid(service)
        os.kill(pid, sig)
        if sig in (signal.SIGSTOP, signal.SIGCONT):
            return
        deadline = time.monotonic() + timeout
        while process_alive(pid):
            if time.monotonic() > deadline:
                raise InstanceError(f"{service} of {self.name} (pid {pid}) outlived signal {sig} by {timeout:g} s")
            time.sleep(0.05)

    def _node(self, node: str) -> tuple[str, int]:
        engine, _, number = node.partition("-")
        if not self.cluster or engine not in ("kafka", "redis") or f"{engine}-{number}" not in self.nodes(engine):
            raise InstanceError(f"{self.name} has no node {node!r}")
        return engine, int(number)

    def remove(self) -> None:
        """Stop every service and delete the home with its data."""
        try:
            self.down()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> Instance:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def service_pid_file(home: Path, service: str) -> Path:
    """Where scripts/services keeps the pid of a service (PostgreSQL: its postmaster's) in a home
    of the single-node topology, the default `.local` included."""
    files = {
        "postgres": home / "data" / "postgres" / "postmaster.pid",
        "redis": home / "run" / "redis.pid",
        "kafka": home / "run" / "kafka.pid",
        "mongo": home / "run" / "ferretdb.pid",
    }
    return files[service]


def pid_in(pid_file: Path) -> int | None:
    """The pid a pid file holds (first word), or None without one."""
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None


def free_ports(count: int) -> dict[str, int]:
    """`count` ports in PORT_RANGE that nothing listens on, one per port variable."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(*PORT_RANGE)
        if port not in chosen and port_free(port):
            chosen.append(port)
    return dict(zip(PORT_VARIABLES, chosen, strict=False))


def free_block(size: int, span: tuple[int, int], taken: set[int], offsets: tuple[int, ...] = (0,)) -> int:
    """The first of `size` consecutive free ports in `span`, none in `taken`; each port + every offset free too."""
    for _ in range(1000):
        first = random.randrange(span[0], span[1] - size)
        ports = [port + offset for port in range(first, first + size) for offset in offsets]
        if taken.isdisjoint(ports) and all(port_free(port) for port in ports):
            return first
    raise InstanceError(f"no {size} consecutive free ports in {span}")


def server_ports(count: int) -> int:
    """The first of `count` consecutive free ports for servers a run starts (scripts/prod's nginx,
    web and api processes), below the ephemeral range: no client's outgoing connection holds one
    before its server binds it, or while a drill restarts that server."""
    return free_block(count, PORT_RANGE, set())


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def process_identity(pid: int) -> list[int] | None:
    """A pid with its start time, so a reused pid is not taken for the process that owned an instance."""
    try:
        started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None
    return [pid, started]


def process_alive(pid: int) -> bool:
    """Whether a process runs (a zombie counts as ended: it only waits for its parent to collect it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def owner_alive(name: str) -> bool:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        owner = json.loads((INSTANCES / name / "instance.json").read_text())["owner"]
        return process_identity(owner[0]) == owner
    return False


def prune(patience_s: float = 60.0) -> list[str]:
    """Remove the instances whose owning process has exited (a run that was killed); their names.

    A home without its record yet may be one being created right now: it is left for `patience_s`.
    """
    removed = []
    for home in sorted(INSTANCES.glob("*")) if INSTANCES.is_dir() else []:
        recorded = (home / "instance.json").exists()
        if owner_alive(home.name) or (not recorded and time.time() - home.stat().st_mtime < patience_s):
            continue
        if recorded:
            with contextlib.suppress(InstanceError):
                Instance.attach(home.name).down()
        shutil.rmtree(home, ignore_errors=True)
        removed.append(home.name)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the private instances, their ports and whether their owner runs")
    commands.add_parser("remove", help="stop an instance and delete its data").add_argument("name")
    commands.add_parser("prune", help="remove the instances whose owner has exited")
    args = parser.parse_args(argv)
    if args.command == "list":
        for home in sorted(INSTANCES.glob("*")) if INSTANCES.is_dir() else []:
            with contextlib.suppress(OSError, ValueError, KeyError):
                instance = Instance.attach(home.name)
                topology = "cluster" if instance.cluster else "single"
                owner = "running" if owner_alive(home.name) else "gone"
                print(f"{home.name}  {topology}  owner {owner}  {instance.ports}")
    elif args.command == "remove":
        Instance.attach(args.name).remove()
    else:
        print("\n".join(prune()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Services of a test's own, to stop, restart or pause; and the logs of what a test started, when it fails.

A test never stops the shared services: others use them at the same time. It asks for a Redis
(`private_redis`) or a Kafka broker (`private_kafka`) that it alone uses. Registered for every
test by the root conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from benchmarks.instance import PORT_RANGE, REDIS_BUS_OFFSET, REDIS_CLUSTER_PORT_RANGE, Instance, port_free

# Outside Linux's ephemeral range (32768-60999): no connection picks the port as its own
# while the server is down, so a restart finds it free.
PORTS = range(*PORT_RANGE)
# A Redis Cluster node also listens on its port + REDIS_BUS_OFFSET (its cluster bus): its port is
# low enough that the bus is outside the ephemeral range too, or a connection may hold it first.
CLUSTER_PORTS = range(*REDIS_CLUSTER_PORT_RANGE)
START_TIMEOUT_S = 30
# A private broker started in 4-7 s and restarted in 4 s here (2 shared cores); 23 s once under a
# load of 14.
KAFKA_UP_TIMEOUT_S = 60.0
# scripts/services gives a broker 45 s to stop before it kills it.
KAFKA_DOWN_TIMEOUT_S = 60.0


class PrivateRedis:
    """Debian's redis-server on a free loopback port and a folder of its own, without persistence."""

    def __init__(self, folder: Path, *, cluster: bool = False) -> None:
        self.folder = folder
        self.cluster = cluster
        self.port = _free_port(CLUSTER_PORTS, REDIS_BUS_OFFSET) if cluster else _free_port(PORTS)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = folder / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start on this server's port and return once it answers PING."""
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder)]
        command += ["--save", "", "--appendonly", "no", "--logfile", str(self.log)]
        if self.cluster:
            command += ["--cluster-enabled", "yes", "--cluster-config-file", str(self.folder / "nodes.conf")]
            # A replica copies its primary at once, not after the default 5 s of waiting for others.
            command += ["--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0"]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} exited:\n{self.log_tails()}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Shut down as an operator would (SIGTERM), and wait until it has."""
        assert self.process is not None
        self.process.terminate()
        self.process.wait(START_TIMEOUT_S)

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the server: connections stay open and nothing answers (a hung server)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def discard(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.kill()
            self.process.wait(START_TIMEOUT_S)

    def log_tails(self) -> str:
        return f"== {self.log}\n{_tail(self.log)}"


def _free_port(ports: range, *offsets: int) -> int:
    """A free port in `ports` whose port + each offset is free too."""
    for port in random.sample(ports, 50):
        if all(port_free(port + offset) for offset in (0, *offsets)):
            return port
    raise RuntimeError(f"no free port in {ports}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(unreadable: {exc})"


@pytest.fixture
def private_redis(tmp_path_factory) -> Iterator[PrivateRedis]:
    """A Redis this test alone uses, so it may stop or freeze it without touching the shared one."""
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.discard()


@pytest.fixture
def backends_on_private_redis(private_redis) -> Iterator[PrivateRedis]:
    """This process's Redis client (infrastructure.backends) on the test's own Redis, and back after."""
    from django.test import override_settings

    from infrastructure import backends

    # Not pytest-django's settings fixture: it restores after this fixture's teardown, and the
    # clients must be dropped after the restore. Before it, a thread still running (say a
    # projector's cache repair) could cache a client of the private Redis for the tests after.
    with override_settings(REDIS_URL=private_redis.url, REDIS_CLUSTER=False):
        backends.reset_clients()
        yield private_redis
    backends.reset_clients()


class PrivateRedisCluster:
    """A Redis Cluster of this test's own: three primaries, each with a replica, on free ports.

    Nodes are PrivateRedis servers started with cluster mode on; `kill` and `start` take one
    node down hard and back (it rejoins as it left, or as a replica if it lost its slots).
    """

    PRIMARIES = 3

    def __init__(self, folder: Path) -> None:
        self.nodes = []
        for index in range(self.PRIMARIES * 2):
            node_folder = folder / f"node{index}"
            node_folder.mkdir()
            self.nodes.append(PrivateRedis(node_folder, cluster=True))
        self.url = self.nodes[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            timeout=START_TIMEOUT_S,
        )
        self.wait_until_ok()

    def wait_until_ok(self, timeout: float = START_TIMEOUT_S) -> None:
        """Return once every running node sees the cluster whole (each slot served, agreed on)
        and every running replica has its primary's data: before that, none would take over."""
        deadline = time.monotonic() + timeout
        while True:
            states = [self._info(node) for node in self.running()]
            if all(s.get("cluster_state") == "ok" and s.get("cluster_slots_ok") == "16384" for s in states):
                epochs = {s.get("cluster_current_epoch") for s in states}
                if len(epochs) == 1 and all(self._synced(node) for node in self.running()):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the private Redis Cluster is not ok after {timeout:.0f} s: {states}")
            time.sleep(0.1)

    def running(self) -> list[PrivateRedis]:
        return [node for node in self.nodes if node.process is not None and node.process.poll() is None]

    def primaries(self) -> list[PrivateRedis]:
        """The running nodes that hold slots now."""
        return [node for node in self.running() if self._role(node) == "master"]

    def kill(self, node: PrivateRedis) -> None:
        """End a node at once (SIGKILL): what a crashed machine looks like to the others."""
        assert node.process is not None
        node.process.kill()
        node.process.wait(START_TIMEOUT_S)

    def discard(self) -> None:
        for node in self.nodes:
            node.discard()

    def log_tails(self) -> str:
        return "\n".join(node.log_tails() for node in self.nodes)

    @staticmethod
    def _client(node: PrivateRedis) -> redis.Redis:
        return redis.Redis.from_url(node.url, socket_connect_timeout=1, socket_timeout=1, decode_responses=True)

    def _info(self, node: PrivateRedis) -> dict[str, str]:
        client = self._client(node)
        try:
            text = str(client.execute_command("CLUSTER", "INFO"))
        except redis.RedisError:
            return {}
        finally:
            client.close()
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def _synced(self, node: PrivateRedis) -> bool:
        """A primary, or a replica whose link to its primary is up (its first copy is done)."""
        client = self._client(node)
        try:
            replication = client.info("replication")
        except redis.RedisError:
            return False
        finally:
            client.close()
        return replication.get("role") == "master" or replication.get("master_link_status") == "up"

    def _role(self, node: PrivateRedis) -> str:
        client = self._client(node)
        try:
            return str(client.execute_command("ROLE")[0])
        except redis.RedisError:
            return "unknown"
        finally:
            client.close()


@pytest.fixture
def private_redis_cluster(tmp_path_factory) -> Iterator[PrivateRedisCluster]:
    """A Redis Cluster (3 primaries, 3 replicas) this test alone uses."""
    cluster = PrivateRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.discard()


@pytest.fixture
def backends_on_private_redis_cluster(private_redis_cluster) -> Iterator[PrivateRedisCluster]:
    """This process's Redis client on the test's own Redis Cluster, and back after."""
    from django.test import override_settings

    from infrastructure import backends

    with override_settings(REDIS_URL=private_redis_cluster.url, REDIS_CLUSTER=True):
        backends.reset_clients()
        yield private_redis_cluster
    backends.reset_clients()


@dataclass
class PrivateKafka:
    """A broker of a private instance of the services (benchmarks/instance.py), and how to stop it."""

    instance: Instance
    bootstrap: str
    started_in_s: float

    def down(self) -> None:
        self.instance.down("kafka", timeout=KAFKA_DOWN_TIMEOUT_S)

    def up(self) -> None:
        self.instance.up("kafka", timeout=KAFKA_UP_TIMEOUT_S)

    def log_tails(self) -> str:
        logs = self.instance.home / "logs"
        started = f"(the broker took {self.started_in_s:.1f} s to start)"
        names = ("kafka.log", "kafka.stdout.log")
        return "\n".join(f"== {logs / name} {started}\n{_tail(logs / name)}" for name in names)


@pytest.fixture
def private_kafka() -> Iterator[PrivateKafka]:
    """A Kafka broker this test alone uses, with this process's Kafka clients pointed at it."""
    from django.test import override_settings

    from infrastructure import backends

    instance = Instance.create("test-kafka")
    try:
        started = time.monotonic()
        instance.up("kafka", timeout=KAFKA_UP_TIMEOUT_S)
        broker = PrivateKafka(instance, f"127.0.0.1:{instance.ports['CHAT_KAFKA_PORT']}", time.monotonic() - started)
        # Restored before the cached admin client is dropped, as for Redis above.
        # One broker holds one copy, whatever the run's own Kafka is.
        with override_settings(
            KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, KAFKA_REPLICATION_FACTOR=1, KAFKA_MIN_INSYNC_REPLICAS=1
        ):
            backends.reset_clients()
            yield broker
        backends.reset_clients()
    finally:
        instance.remove()


def failover_url() -> str:
    """This run's database as a libpq failover list whose first host (a free port) does not answer."""
    from django.db import connection

    real = connection.settings_dict
    return (
        f"postgres://{real['USER']}:{real['PASSWORD']}@127.0.0.1:{_free_port(PORTS)},{real['HOST']}:{real['PORT']}"
        f"/{real['NAME']}?target_session_attrs=read-write&connect_timeout=2"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Show the end of the logs of the servers a failed test used, so the failure explains itself."""
    report = yield
    if report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            # Looked up on the type: a pymongo Database answers any attribute with a collection.
            if callable(getattr(type(value), "log_tails", None)):
                report.sections.append((f"logs of fixture {name!r}", value.log_tails()))
    return report

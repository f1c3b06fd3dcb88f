"""docker-compose.cluster.yml over docker-compose.yml as `docker compose` reads them; its Redis Cluster job, run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from benchmarks.instance import REDIS_BUS_OFFSET
from deploy.tests.test_compose import ROLES, ROOT, compose
from infrastructure.testing.private_services import CLUSTER_PORTS, START_TIMEOUT_S, _free_port

CLUSTER_FILE = ("-f", "docker-compose.cluster.yml")
BROKERS = ("kafka", "kafka-2", "kafka-3")
REDIS_NODES = ("redis", "redis-2", "redis-3", "redis-4", "redis-5", "redis-6")
ONE_SHOT = ("init", "redis-cluster-create")
REPLICAS = {"api": 2, "web": 3, "relay": 2, "projector": 2, "pusher": 2}
CLUSTER_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092,kafka-2:9092,kafka-3:9092",
    "REDIS_URL": "redis://redis-1:6379/0",
    "REDIS_CLUSTER": "true",
    "KAFKA_REPLICATION_FACTOR": "3",
    "KAFKA_MIN_INSYNC_REPLICAS": "2",
    "KAFKA_TOPIC_PARTITIONS": "6",
}


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose(*CLUSTER_FILE, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def names_on_the_network(service: dict) -> set[str]:
    """The host names other containers reach this service by."""
    return {*(service["networks"]["chat"] or {}).get("aliases", [])}


def config_content(config: dict, name: str) -> str:
    """A config's text as the container gets it (`config` writes a literal $ as $$)."""
    return str(config["configs"][name]["content"]).replace("$$", "$")


def test_the_cluster_file_is_valid_over_the_base_file():
    result = compose(*CLUSTER_FILE, "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_it_is_a_project_of_its_own_so_it_never_reuses_the_single_node_volumes(config):
    assert config["name"] == "chatproject-cluster"
    assert config["volumes"]["kafka-data"]["name"] == "chatproject-cluster_kafka-data"


def test_three_brokers_vote_in_one_quorum_of_all_three(config):
    services = config["services"]
    envs = [services[name]["environment"] for name in BROKERS]
    assert sorted(int(env["KAFKA_NODE_ID"]) for env in envs) == [1, 2, 3]
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    assert len({env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs}) == 1
    voters = dict(voter.split("@") for voter in envs[0]["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
    assert sorted(voters) == sorted(env["KAFKA_NODE_ID"] for env in envs), "every broker votes"
    for name, env in zip(BROKERS, envs, strict=True):
        host = env["KAFKA_ADVERTISED_LISTENERS"].removeprefix("PLAINTEXT://").removesuffix(":9092")
        assert host in {name} | names_on_the_network(services[name]), f"{name} advertises {host}"
        assert voters[env["KAFKA_NODE_ID"]] == f"{host}:9093"
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        # The project creates its topics, with their partitions, in init.
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert len({m["source"] for name in BROKERS for m in services[name]["volumes"]}) == 3


def test_every_replication_setting_keeps_three_copies_and_two_in_sync(config):
    settings = {
        (name, key): value
        for name, service in config["services"].items()
        for key, value in (service.get("environment") or {}).items()
        if re.search(r"REPLICATION_FACTOR$|MIN_ISR$|MIN_INSYNC_REPLICAS$", key)
    }
    assert {name for name, _ in settings} == {*BROKERS, *ROLES, "init"}
    for (name, key), value in settings.items():
        assert value == ("3" if key.endswith("REPLICATION_FACTOR") else "2"), (name, key)
    for name in BROKERS:
        env = config["services"][name]["environment"]
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"


def test_six_redis_nodes_run_in_cluster_mode_each_on_its_own_volume(config):
    services = config["services"]
    settings = config_content(config, "redis-cluster-node").splitlines()
    for line in ("cluster-enabled yes", "cluster-config-file nodes.conf", "appendonly yes"):
        assert line in settings
    # Clients get host names, which survive a container's new address.
    assert "cluster-preferred-endpoint-type hostname" in settings
    announced = []
    for name in REDIS_NODES:
        node = services[name]
        assert node["image"] == "redis:7.4"
        assert node["command"][:2] == ["redis-server", "/etc/redis/cluster-node.conf"]
        assert [(c["source"], c["target"]) for c in node["configs"]] == [
            ("redis-cluster-node", "/etc/redis/cluster-node.conf")
        ]
        host = node["command"][node["command"].index("--cluster-announce-hostname") + 1]
        assert host in {name} | names_on_the_network(node), f"{name} announces {host}"
        announced.append(host)
        # nodes.conf is written to the working directory, /data: the node's volume.
        assert [m["target"] for m in node["volumes"]] == ["/data"]
    assert len({services[name]["volumes"][0]["source"] for name in REDIS_NODES}) == 6
    assert services["redis-cluster-create"]["environment"]["REDIS_CLUSTER_NODES"].split() == [
        f"{host}:6379" for host in announced
    ]


def test_the_app_starts_only_once_the_redis_cluster_is_created(config):
    services = config["services"]
    job = services["redis-cluster-create"]
    assert job["restart"] == "no"
    assert {name: d["condition"] for name, d in job["depends_on"].items()} == dict.fromkeys(
        REDIS_NODES, "service_healthy"
    )
    for name in ROLES:
        assert services[name]["depends_on"]["redis-cluster-create"]["condition"] == "service_completed_successfully"
    # init creates the topics with three replicas: all three brokers must be up.
    for name in BROKERS:
        assert services["init"]["depends_on"][name]["condition"] == "service_healthy"


def test_every_app_service_is_configured_for_the_clusters(config):
    for name in (*ROLES, "init"):
        env = config["services"][name]["environment"]
        assert {key: env.get(key) for key in CLUSTER_ENV} == CLUSTER_ENV, name


def test_the_roles_run_in_several_replicas(config):
    assert {name: config["services"][name]["deploy"]["replicas"] for name in REPLICAS} == REPLICAS


def test_still_only_nginx_and_the_uis_publish_a_port(config):
    published = {name for name, service in config["services"].items() if service.get("ports")}
    assert published == {"nginx", "adminer", "mongo-express"}


def test_every_long_running_service_still_has_a_healthcheck_and_restarts(config):
    for name, service in config["services"].items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_nginx_reaches_every_replica_and_follows_them_as_they_come_and_go(config):
    """Upstream servers with `resolve` take every address Docker's DNS gives, again every 10 s."""
    upstreams = (ROOT / "deploy" / "nginx" / "upstream.compose.conf").read_text()
    assert re.search(r"^resolver 127\.0\.0\.11 valid=10s", upstreams, re.MULTILINE)
    for name in ("api", "web"):
        block = upstreams.split(f"upstream chat_{name} {{")[1].split("}")[0]
        assert f"server {name}:8000 resolve;" in block
        assert f"zone chat_{name} " in block  # `resolve` keeps the servers in shared memory
    # `resolve` in an upstream is in open-source nginx since 1.27.3.
    version = tuple(int(n) for n in config["services"]["nginx"]["image"].split(":")[1].split("-")[0].split("."))
    assert version >= (1, 27, 3)


class ClusterNode:
    """A redis-server with the compose file's node settings, on a loopback address and folder of its own."""

    def __init__(self, folder: Path, settings: Path) -> None:
        self.folder = folder
        self.settings = settings
        self.port = _free_port(CLUSTER_PORTS, REDIS_BUS_OFFSET)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, host: str) -> None:
        """Start on host:port, as the container would on a new address, and return once it answers."""
        # One address for everything the node sends and receives, as a container has.
        command = ["redis-server", str(self.settings), "--port", str(self.port)]
        command += ["--bind", host, "--bind-source-addr", host, "--cluster-announce-hostname", "localhost"]
        command += ["--dir", str(self.folder), "--save", ""]
        command += ["--logfile", str(self.folder / "redis.log")]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        client = redis.Redis(host=host, port=self.port, socket_connect_timeout=1, socket_timeout=1)
        try:
            for _ in range(START_TIMEOUT_S * 10):
                assert self.process.poll() is None, (self.folder / "redis.log").read_text()
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.1)
            raise AssertionError(f"redis-server on {host}:{self.port} does not answer")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(START_TIMEOUT_S)


@pytest.fixture
def cluster_nodes(config, tmp_path) -> Iterator[list[ClusterNode]]:
    settings = tmp_path / "cluster-node.conf"
    settings.write_text(config_content(config, "redis-cluster-node"))
    nodes = [ClusterNode(tmp_path / f"node{index}", settings) for index in range(len(REDIS_NODES))]
    for node in nodes:
        node.folder.mkdir()
    yield nodes
    for node in nodes:
        node.stop()


def run_the_create_job(config: dict, nodes: list[ClusterNode], host: str) -> subprocess.CompletedProcess[str]:
    script = config_content(config, "redis-cluster-create")
    env = {**os.environ, "REDIS_CLUSTER_NODES": " ".join(f"{host}:{node.port}" for node in nodes)}
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=90)


def cluster_view(host: str, node: ClusterNode) -> dict[str, tuple[str, str]]:
    """Each node this one knows, by id: its address as this one has it, and whether they are linked."""
    client = redis.Redis(host=host, port=node.port, decode_responses=True)
    try:
        lines = str(client.execute_command("CLUSTER", "NODES")).splitlines()
    finally:
        client.close()
    return {fields[0]: (fields[1].split("@")[0], fields[7]) for fields in (line.split() for line in lines)}


def test_the_create_job_creates_the_cluster_once_and_reconnects_it_after_every_address_changed(config, cluster_nodes):
    for node in cluster_nodes:
        node.start("127.0.0.1")
    created = run_the_create_job(config, cluster_nodes, "127.0.0.1")
    assert created.returncode == 0, created.stdout + created.stderr
    ids = set(cluster_view("127.0.0.1", cluster_nodes[0]))
    assert len(ids) == 6

    again = run_the_create_job(config, cluster_nodes, "127.0.0.1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Performing hash slots allocation" not in again.stdout

    # Recreated containers: every node back on a new address, nodes.conf naming only the old ones.
    for node in cluster_nodes:
        node.stop()
    for node in cluster_nodes:
        node.start("127.0.0.2")
    rejoined = run_the_create_job(config, cluster_nodes, "127.0.0.2")
    assert rejoined.returncode == 0, rejoined.stdout + rejoined.stderr
    addresses = {f"127.0.0.2:{node.port}" for node in cluster_nodes}
    for node in cluster_nodes:
        view = cluster_view("127.0.0.2", node)
        assert set(view) == ids, "the same cluster, not a new one"
        assert {address for address, _ in view.values()} == addresses
        assert {link for _, link in view.values()} == {"connected"}

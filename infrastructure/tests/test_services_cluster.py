"""The cluster topology of scripts/services: three Kafka brokers in one quorum, a six-node Redis Cluster.

One private cluster instance (benchmarks/instance.py) serves the module: it is started once, and a
test that stops a node starts it again before it ends.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType
from django.test import override_settings

from benchmarks.instance import ROOT, SCRIPT, Instance
from infrastructure import backends, namespace
from infrastructure.messaging.topics import ensure_topics

# Starting the cluster takes about 20 s here, a broker's failover about 10 s.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BROKERS = (1, 2, 3)
# How long a stopped broker's partitions may take to move, and a restarted one to catch up.
MOVE_TIMEOUT_S = 60.0


@dataclass
class RunningCluster:
    instance: Instance
    env: dict[str, str]  # what `scripts/services env` prints for it
    started_in_s: float

    def broker(self, node_id: int) -> str:
        return f"127.0.0.1:{self.instance.node_port(f'kafka-{node_id}')}"

    def redis_node(self, node: str) -> redis.Redis:
        return redis.Redis(port=self.instance.node_port(node), socket_timeout=5, decode_responses=True)

    def log_tails(self) -> str:
        logs = self.instance.home / "logs"
        files = [logs / f"kafka-{n}" / name for n in BROKERS for name in ("kafka.log", "stdout.log")]
        files += [logs / f"{node}.log" for node in self.instance.nodes("redis")]
        started = f"(the cluster took {self.started_in_s:.1f} s to start)"
        return "\n".join(f"== {path} {started}\n{_tail(path)}" for path in files)


def _tail(path: os.PathLike[str], lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as file:
            return "".join(collections.deque(file, lines))
    except OSError as exc:
        return f"(unreadable: {exc})"


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    instance = Instance.create("test-cluster", cluster=True)
    try:
        started = time.monotonic()
        instance.up()
        yield RunningCluster(instance, instance.environment(), time.monotonic() - started)
    finally:
        instance.remove()


@pytest.fixture
def kafka_of_cluster(cluster) -> Iterator[RunningCluster]:
    """This process's Kafka clients and topic settings on the cluster, as its `env` gives them."""
    env = cluster.env
    with override_settings(
        KAFKA_BOOTSTRAP_SERVERS=env["KAFKA_BOOTSTRAP_SERVERS"],
        KAFKA_REPLICATION_FACTOR=int(env["KAFKA_REPLICATION_FACTOR"]),
        KAFKA_MIN_INSYNC_REPLICAS=int(env["KAFKA_MIN_INSYNC_REPLICAS"]),
        KAFKA_TOPIC_PARTITIONS=int(env["KAFKA_TOPIC_PARTITIONS"]),
    ):
        backends.reset_clients()
        yield cluster
    backends.reset_clients()


def test_its_env_names_every_broker_one_redis_node_and_the_replication_settings(cluster):
    brokers = ",".join(cluster.broker(n) for n in BROKERS)
    assert cluster.env["KAFKA_BOOTSTRAP_SERVERS"] == brokers
    assert cluster.env["REDIS_URL"] == f"redis://127.0.0.1:{cluster.instance.node_port('redis-1')}/0"
    assert cluster.env["REDIS_CLUSTER"] == "true"
    replication = ("KAFKA_REPLICATION_FACTOR", "KAFKA_MIN_INSYNC_REPLICAS", "KAFKA_TOPIC_PARTITIONS")
    assert [cluster.env[name] for name in replication] == ["3", "2", "6"]


def test_its_three_brokers_form_one_cluster_with_one_quorum(cluster):
    cluster_ids = set()
    for node_id in BROKERS:
        admin = AdminClient({"bootstrap.servers": cluster.broker(node_id)})
        assert set(admin.list_topics(timeout=10).brokers) == set(BROKERS), f"broker {node_id} sees them all"
        cluster_ids.add(admin.describe_cluster(request_timeout=10).result().cluster_id)
    assert len(cluster_ids) == 1
    # Each voter's record of the metadata quorum: the same three voters, the same leader.
    states = []
    for node_id in BROKERS:
        state_file = cluster.instance.home / "data" / f"kafka-{node_id}" / "__cluster_metadata-0" / "quorum-state"
        states.append(json.loads(state_file.read_text()))
    assert all(sorted(v["voterId"] for v in state["currentVoters"]) == list(BROKERS) for state in states), states
    assert len({(state["leaderId"], state["leaderEpoch"]) for state in states}) == 1, states


def test_its_brokers_give_every_topic_three_copies_of_which_two_must_have_a_write(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.env["KAFKA_BOOTSTRAP_SERVERS"]})
    wanted = {
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
    }
    for node_id in BROKERS:
        resource = ConfigResource(ResourceType.BROKER, str(node_id))
        entries = admin.describe_configs([resource])[resource].result(timeout=10)
        assert {name: entries[name].value for name in wanted} == wanted, f"broker {node_id}"


def test_ensure_topics_creates_six_partitions_with_three_copies_and_two_in_sync(kafka_of_cluster, unique):
    ensure_topics((f"replicated-{unique}",))

    topic = namespace.topic(f"replicated-{unique}")
    admin = AdminClient({"bootstrap.servers": kafka_of_cluster.env["KAFKA_BOOTSTRAP_SERVERS"]})
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    assert len(partitions) == 6
    assert {len(p.replicas) for p in partitions.values()} == {3}
    resource = ConfigResource(ResourceType.TOPIC, topic)
    setting = admin.describe_configs([resource])[resource].result(timeout=10)["min.insync.replicas"]
    # The topic's own setting, not the broker default it would otherwise fall back to.
    assert (setting.value, setting.source) == ("2", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)


def test_with_its_busiest_broker_killed_every_partition_takes_writes_and_the_broker_rejoins(kafka_of_cluster, unique):
    cluster = kafka_of_cluster
    ensure_topics((f"failover-{unique}",))
    topic = namespace.topic(f"failover-{unique}")
    admin = AdminClient({"bootstrap.servers": cluster.env["KAFKA_BOOTSTRAP_SERVERS"]})
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    victim, _ = collections.Counter(p.leader for p in partitions.values()).most_common(1)[0]

    cluster.instance.kill(f"kafka-{victim}")
    try:
        producer = Producer(
            {"bootstrap.servers": cluster.env["KAFKA_BOOTSTRAP_SERVERS"], "enable.idempotence": True, "acks": "all"}
        )
        delivered = {}
        for partition in partitions:
            producer.produce(
                topic,
                value=b"x",
                partition=partition,
                on_delivery=lambda err, msg: delivered.update({msg.partition(): err}),
            )
        assert producer.flush(MOVE_TIMEOUT_S) == 0, "every write was answered"
        assert delivered == dict.fromkeys(partitions), "every write was acknowledged by two copies or more"
        led_by = {p.id: p.leader for p in admin.list_topics(topic, timeout=10).topics[topic].partitions.values()}
        assert victim not in led_by.values(), led_by
    finally:
        cluster.instance.up(f"kafka-{victim}")

    deadline = time.monotonic() + MOVE_TIMEOUT_S
    while True:
        isrs = {p.id: p.isrs for p in admin.list_topics(topic, timeout=10).topics[topic].partitions.values()}
        if all(victim in isr for isr in isrs.values()):
            break
        assert time.monotonic() < deadline, f"broker {victim} is not back in every in-sync set: {isrs}"
        time.sleep(0.2)


def test_its_redis_cluster_has_three_primaries_each_with_one_replica(cluster):
    client = redis.RedisCluster.from_url(cluster.env["REDIS_URL"], decode_responses=True)
    assert client.cluster_info()["cluster_state"] == "ok"
    nodes = cluster.redis_node("redis-1").execute_command("CLUSTER NODES").values()
    primaries = {node["node_id"] for node in nodes if "master" in node["flags"] and "fail" not in node["flags"]}
    replicas_of = collections.Counter(node["master_id"] for node in nodes if "slave" in node["flags"])
    assert len(primaries) == 3
    assert replicas_of == dict.fromkeys(primaries, 1)
    client.close()


def test_a_killed_redis_primary_hands_over_to_its_replica_and_comes_back_as_a_replica(cluster, unique):
    client = redis.RedisCluster.from_url(cluster.env["REDIS_URL"], decode_responses=True)
    key = namespace.tagged(unique, "survivor")
    victim = cluster.instance.node_of_port("redis", client.get_node_from_key(key).port)
    primary = cluster.redis_node(victim)
    primary.set(key, "kept")
    assert primary.execute_command("WAIT", 1, 5000) == 1, "the replica has the write before the crash"
    own_id = primary.execute_command("CLUSTER MYID")
    address = next(
        address for address, node in primary.execute_command("CLUSTER NODES").items() if node["master_id"] == own_id
    )
    replica = cluster.instance.node_of_port("redis", int(address.rsplit(":", 1)[1]))

    cluster.instance.kill(victim)
    try:
        # The replica knows it took over before gossip tells the others; a client that asks another
        # node for the slots in between is sent to the dead primary.
        survivors = [node for node in cluster.instance.nodes("redis") if node != victim]
        deadline = time.monotonic() + MOVE_TIMEOUT_S
        while not all(_sees_as_primary(cluster.redis_node(node), address) for node in survivors):
            assert time.monotonic() < deadline, f"{replica} did not take over from {victim} in every node's view"
            time.sleep(0.1)
        assert client.get(key) == "kept"
    finally:
        cluster.instance.up(victim)

    role = cluster.redis_node(victim).execute_command("ROLE")
    assert (role[0], role[2]) == ("slave", cluster.instance.node_port(replica))
    assert client.get(key) == "kept"
    client.close()


def _sees_as_primary(node: redis.Redis, address: str) -> bool:
    return "master" in node.execute_command("CLUSTER NODES")[address]["flags"].split(",")


def test_the_home_remembers_the_topology_and_status_lists_every_node(cluster):
    # As an operator types it: the home's variables, without CHAT_TOPOLOGY or --cluster.
    variables = {name: value for name, value in cluster.instance.variables().items() if name != "CHAT_TOPOLOGY"}
    env = {name: value for name, value in os.environ.items() if name != "CHAT_TOPOLOGY"} | variables
    status = subprocess.run([SCRIPT, "status"], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout

    rows = [line.split() for line in status.splitlines()]
    nodes = [*cluster.instance.nodes("redis"), *cluster.instance.nodes("kafka")]
    assert [row[0] for row in rows] == ["postgres", *nodes, "mongo"]
    for name, state, port, pid, *_ in rows:
        assert state == "running", status
        if name in nodes:
            assert (port, pid) == (f"port={cluster.instance.node_port(name)}", f"pid={cluster.instance.pid(name)}")
    roles = collections.Counter(row[4] for row in rows if row[0].startswith("redis-"))
    assert roles == {"role=master": 3, "role=slave": 3}

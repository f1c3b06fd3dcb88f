"""Looking into and handling a private Redis Cluster (infrastructure/testing/private_services.py) in tests."""

import time

import redis

from infrastructure.testing.private_services import PrivateRedis, PrivateRedisCluster

CEILING_S = 30  # what a wait may take before the test fails; far above what it takes


def direct(node: PrivateRedis) -> redis.Redis:
    return redis.Redis(port=node.port, decode_responses=True)


def slot_owners(cluster: PrivateRedisCluster) -> dict[int, int]:
    """Slot -> port of the primary holding it, read from a running node."""
    client = direct(cluster.primaries()[0])
    try:
        ranges = client.execute_command("CLUSTER", "SLOTS")
    finally:
        client.close()
    return {slot: int(primary[1]) for start, end, primary, *_ in ranges for slot in range(start, end + 1)}


def replicas_in_sync(cluster: PrivateRedisCluster) -> None:
    """Return once every replica has its primary's data: before that, none would take over."""
    # A new cluster's primaries wait 5 s (repl-diskless-sync-delay) before the first sync.
    deadline = time.monotonic() + CEILING_S
    replicas = [node for node in cluster.running() if node not in cluster.primaries()]
    while not all(in_sync(node) for node in replicas):
        assert time.monotonic() < deadline, f"the replicas did not sync in {CEILING_S} s"
        time.sleep(0.1)


def in_sync(replica: PrivateRedis) -> bool:
    client = direct(replica)
    try:
        return client.info("replication").get("master_link_status") == "up"
    finally:
        client.close()


def taken_over(cluster: PrivateRedisCluster, victim: PrivateRedis) -> None:
    """Return once replicas serve every slot the victim held, and the cluster agrees on it."""
    # wait_until_ok alone may return at once: the others see the cluster whole until they
    # notice the victim is gone (the node timeout, 2 s).
    deadline = time.monotonic() + CEILING_S
    while victim.port in slot_owners(cluster).values():
        assert time.monotonic() < deadline, f"no replica took over from port {victim.port} in {CEILING_S} s"
        time.sleep(0.1)
    cluster.wait_until_ok()


def move_slot(slot: int, source: PrivateRedis, target: PrivateRedis) -> None:
    """Hand an empty slot from one primary to another, as a resharding does."""
    source_client, target_client = direct(source), direct(target)
    try:
        source_id, target_id = source_client.cluster("MYID"), target_client.cluster("MYID")
        target_client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source_client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        target_client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        source_client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    finally:
        source_client.close()
        target_client.close()

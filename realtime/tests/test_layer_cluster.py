"""The channel layer on a Redis Cluster of the test's own: sharded pub/sub, and every gap told."""

import asyncio
import itertools
import json
import os

import pytest
import redis
from redis.crc import key_slot

from infrastructure.testing.private_services import PrivateRedis, PrivateRedisCluster
from realtime.layer import LayerUnavailable, RedisPubSubLayer
from realtime.tests.cluster import direct, move_slot, replicas_in_sync, slot_owners, taken_over

pytestmark = pytest.mark.integration
CEILING_S = 30  # what a wait may take before the test fails; far above what it takes


def layer_for(cluster: PrivateRedisCluster, unique: str, **options) -> RedisPubSubLayer:
    return RedisPubSubLayer(cluster.url, prefix=f"test-{unique}", cluster=True, **options)


def groups_by_primary(layer: RedisPubSubLayer, cluster: PrivateRedisCluster, each: int) -> dict[int, list[str]]:
    """Group names whose Redis channels fall on each primary, `each` per primary, by its port."""
    owner = slot_owners(cluster)
    found: dict[int, list[str]] = {node.port: [] for node in cluster.primaries()}
    for n in itertools.count():
        group = f"room.{n}.message"
        port = owner[key_slot(layer._group_name(group).encode())]
        if len(found[port]) < each:
            found[port].append(group)
        if all(len(groups) == each for groups in found.values()):
            return found
    raise AssertionError("unreachable")


async def next_message(layer: RedisPubSubLayer, channel: str) -> dict:
    return await asyncio.wait_for(layer.receive(channel), CEILING_S)


async def until_the_gap(layer: RedisPubSubLayer, channel: str) -> list[dict]:
    """What arrives on `channel` before the layer reports a gap; fails if it reports none in time."""
    received: list[dict] = []
    try:
        async with asyncio.timeout(CEILING_S):
            while True:
                received.append(await layer.receive(channel))
    except LayerUnavailable:
        return received
    except TimeoutError:
        raise AssertionError(f"no gap reported within {CEILING_S} s") from None


def test_groups_on_every_shard_receive_what_is_sent_from_sync_and_async_code(private_redis_cluster, unique):
    layer = layer_for(private_redis_cluster, unique)
    by_primary = groups_by_primary(layer, private_redis_cluster, each=4)
    groups = [group for on_one in by_primary.values() for group in on_one]

    async def run() -> list[tuple[str, str]]:
        channel = await layer.new_channel("hub.")
        for group in groups:
            await layer.group_add(group, channel)
        await asyncio.to_thread(layer.group_send_many, [(g, {"group": g, "by": "sync"}) for g in groups])
        for group in groups:
            await layer.group_send(group, {"group": group, "by": "async"})
        return [(m["group"], m["by"]) for m in [await next_message(layer, channel) for _ in range(2 * len(groups))]]

    received = asyncio.run(run())
    assert len(by_primary) == 3
    assert sorted(received) == sorted((group, by) for group in groups for by in ("sync", "async"))


def test_a_message_published_right_after_group_add_arrives(private_redis_cluster, unique):
    """group_add returns once the shard confirmed the subscription: no gap before the live feed."""
    layer = layer_for(private_redis_cluster, unique)
    publisher = redis.RedisCluster.from_url(private_redis_cluster.url)

    async def run() -> list[int]:
        channel = await layer.new_channel("hub.")
        for n in range(150):
            group = f"room.{n}.message"
            await layer.group_add(group, channel)
            # A plain client, as another process would publish, right after the join returned.
            publisher.spublish(layer._group_name(group), json.dumps({"n": n}))
        return [(await next_message(layer, channel))["n"] for _ in range(150)]

    try:
        assert sorted(asyncio.run(run())) == list(range(150))
    finally:
        publisher.close()


def test_subscriptions_spread_over_one_connection_per_primary(private_redis_cluster, unique):
    layer = layer_for(private_redis_cluster, unique)
    by_primary = groups_by_primary(layer, private_redis_cluster, each=5)

    async def run() -> tuple[set[str], dict[int, tuple[set[str], int]]]:
        channel = await layer.new_channel("hub.")
        for groups in by_primary.values():
            for group in groups:
                await layer.group_add(group, channel)
        names = {layer._channel_name(channel), *(layer._group_name(g) for gs in by_primary.values() for g in gs)}
        # Asked while the layer's loop runs: its connections close with it.
        return names, {node.port: subscribed_on(node, unique) for node in private_redis_cluster.primaries()}

    names, on_each = asyncio.run(run())
    owner = slot_owners(private_redis_cluster)
    for port, (held, connections) in on_each.items():
        assert held == {name for name in names if owner[key_slot(name.encode())] == port}
        assert len(held) >= 5, "each primary holds the subscriptions of its own slots"
        assert connections == 1, "one subscriber connection per primary"


def subscribed_on(node: PrivateRedis, unique: str) -> tuple[set[str], int]:
    """The layer's shard channels on one node, and how many connections of this process hold them."""
    client = direct(node)
    try:
        held = set(client.execute_command("PUBSUB", "SHARDCHANNELS", f"test-{unique}:*"))
        ours = [c for c in client.client_list() if c["name"] == f"chat-layer-{os.getpid()}" and c["ssub"] != "0"]
    finally:
        client.close()
    return held, len(ours)


def test_killing_a_primary_tells_the_channels_subscribed_there_and_not_the_others(private_redis_cluster, unique):
    cluster = private_redis_cluster
    layer = layer_for(cluster, unique, ping_every_s=0.2, silence_limit_s=2.0)
    by_primary = groups_by_primary(layer, cluster, each=3)
    owner = slot_owners(cluster)

    # The node the url names: the layer and its publishers must find the others without it.
    victim = next(node for node in cluster.primaries() if node.url == cluster.url)
    victim_groups = by_primary[victim.port]
    other_groups = [g for port, groups in by_primary.items() if port != victim.port for g in groups]

    async def run() -> dict:
        on_victim, elsewhere = await layer.new_channel("hub."), await layer.new_channel("hub.")
        while owner[key_slot(layer._channel_name(elsewhere).encode())] == victim.port:
            # The victim is to hold none of `elsewhere`'s subscriptions, its own Redis channel included.
            elsewhere = await layer.new_channel("hub.")
        for group in victim_groups:
            await layer.group_add(group, on_victim)
        for group in other_groups:
            await layer.group_add(group, elsewhere)
        # Both publishers have been used, so they too must follow the failover.
        layer.group_send_many([(victim_groups[0], {"before": "sync"})])
        await layer.group_send(victim_groups[1], {"before": "async"})
        assert {(await next_message(layer, on_victim))["before"] for _ in range(2)} == {"sync", "async"}

        await asyncio.to_thread(replicas_in_sync, cluster)
        cluster.kill(victim)
        killed_at = asyncio.get_running_loop().time()
        await until_the_gap(layer, on_victim)
        told_in_s = asyncio.get_running_loop().time() - killed_at
        await layer.group_send(other_groups[0], {"still": True})
        still = await next_message(layer, elsewhere)  # raises LayerUnavailable had it been told

        await asyncio.to_thread(taken_over, cluster, victim)
        for group in victim_groups:
            await layer.group_add(group, on_victim)
        layer.group_send_many([(victim_groups[0], {"after": "sync"})])
        await layer.group_send(victim_groups[1], {"after": "async"})
        after = [(await next_message(layer, on_victim))["after"] for _ in range(2)]
        return {"told_in_s": told_in_s, "still": still, "after": sorted(after)}

    outcome = asyncio.run(run())
    assert outcome["told_in_s"] < layer.silence_limit_s
    assert outcome["still"] == {"still": True}
    assert outcome["after"] == ["async", "sync"]


def test_a_primary_that_stops_answering_is_noticed(private_redis_cluster, unique):
    cluster = private_redis_cluster
    layer = layer_for(cluster, unique, ping_every_s=0.2, silence_limit_s=1.0)
    by_primary = groups_by_primary(layer, cluster, each=1)
    # Not the node the url names: each shard's connection is pinged, not only the first.
    frozen = next(node for node in cluster.primaries() if node.url != cluster.url)

    async def run() -> None:
        channel = await layer.new_channel("hub.")
        await layer.group_add(by_primary[frozen.port][0], channel)
        frozen.pause()
        try:
            await until_the_gap(layer, channel)
        finally:
            frozen.resume()

    asyncio.run(run())


def test_a_slot_moved_to_another_primary_is_a_gap_and_the_next_join_follows_it(private_redis_cluster, unique):
    cluster = private_redis_cluster
    layer = layer_for(cluster, unique)
    by_primary = groups_by_primary(layer, cluster, each=1)
    source, target = cluster.primaries()[:2]
    group = by_primary[source.port][0]

    async def run() -> dict:
        channel = await layer.new_channel("hub.")
        await layer.group_add(group, channel)
        move_slot(key_slot(layer._group_name(group).encode()), source, target)
        await until_the_gap(layer, channel)
        await layer.group_add(group, channel)
        await layer.group_send(group, {"moved": True})
        return await next_message(layer, channel)

    assert asyncio.run(run()) == {"moved": True}
    assert slot_owners(cluster)[key_slot(layer._group_name(group).encode())] == target.port


def test_a_cluster_no_node_of_which_answers_is_the_layer_away_for_async_and_sync_senders(unique):
    # The cluster client says so with RedisClusterException, which is no RedisError.
    from benchmarks.common import free_port

    layer = RedisPubSubLayer(f"redis://127.0.0.1:{free_port()}/0", prefix=f"test-{unique}", cluster=True)

    async def send() -> None:
        await layer.group_send("room", {"type": "chat.message"})

    with pytest.raises(LayerUnavailable):
        asyncio.run(send())
    with pytest.raises(LayerUnavailable):
        layer.group_send_many([("room", {"type": "chat.message"})])

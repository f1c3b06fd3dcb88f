"""The hub on a Redis of the test's own (private_layer), which some tests stop and start again."""

import asyncio
from collections.abc import Callable

import pytest

from realtime.hub import LayerUnavailable, hub, is_feed_lost, push_from_sync, push_many_from_sync
from realtime.tests.cluster import replicas_in_sync, taken_over

pytestmark = pytest.mark.integration
CEILING_S = 30  # what a wait may take before the test fails; far above what it takes


class Inbox:
    """What hub subscribers received: messageIds, and how many were told their feed has a gap."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.lost = 0
        self.changed = asyncio.Event()

    def deliver(self, push: dict) -> None:
        if is_feed_lost(push):
            self.lost += 1
        else:
            self.ids.append(push["messageId"])
        self.changed.set()

    async def until(self, condition: Callable[["Inbox"], bool]) -> None:
        async with asyncio.timeout(CEILING_S):
            while not condition(self):
                self.changed.clear()
                await self.changed.wait()

    async def ids_once(self, count: int) -> list[int]:
        await self.until(lambda inbox: len(inbox.ids) >= count)
        return self.ids


def test_publishing_from_sync_code_survives_a_redis_restart(private_layer):
    push_from_sync("room.1.message", {"body": "{}", "messageId": 1})  # opens the pooled connection
    private_layer.restart()  # which dies with the old server

    async def push_after_the_restart() -> list[int]:
        inbox = Inbox()
        await (await hub()).join("room.1.message", inbox.deliver)
        await asyncio.to_thread(push_from_sync, "room.1.message", {"body": "{}", "messageId": 2})
        return await inbox.ids_once(1)

    assert asyncio.run(push_after_the_restart()) == [2]


def test_publishing_to_many_groups_at_once_stays_within_the_connection_pool(private_layer):
    """The pusher hands over a batch of up to 500 events at once, each room its own group."""
    groups = [f"room.{n}.message" for n in range(1, 501)]

    async def publish_a_batch() -> list[int]:
        the_hub, inbox = await hub(), Inbox()
        await asyncio.gather(*(the_hub.join(group, inbox.deliver) for group in groups))
        batch = [(group, {"body": "{}", "messageId": n}) for n, group in enumerate(groups, 1)]
        await asyncio.to_thread(push_many_from_sync, batch)
        return sorted(await inbox.ids_once(len(groups)))

    assert asyncio.run(publish_a_batch()) == list(range(1, 501))


def test_on_a_redis_cluster_a_batch_from_sync_code_reaches_groups_joined_at_once(private_cluster_layer):
    """The pusher's pipelined SPUBLISH to 300 groups spread over three primaries, joined in a storm."""
    groups = [f"room.{n}.message" for n in range(1, 301)]

    async def publish_a_batch() -> list[int]:
        the_hub, inbox = await hub(), Inbox()
        await asyncio.gather(*(the_hub.join(group, inbox.deliver) for group in groups))
        batch = [(group, {"body": "{}", "messageId": n}) for n, group in enumerate(groups, 1)]
        await asyncio.to_thread(push_many_from_sync, batch)
        return sorted(await inbox.ids_once(len(groups)))

    assert asyncio.run(publish_a_batch()) == list(range(1, 301))


def test_many_subscriptions_joining_at_once_stay_within_the_connection_pool(private_layer):
    """A reconnect storm: every client of a web process subscribes again within a moment."""

    async def storm() -> int:
        the_hub = await hub()
        groups = [f"room.{n}.message" for n in range(1, 501)]
        subscribers = [lambda push: None for _ in groups]
        await asyncio.gather(*(the_hub.join(g, s) for g, s in zip(groups, subscribers, strict=True)))
        joined = sum(1 for g in groups if the_hub.groups.get(g))
        await asyncio.gather(*(the_hub.leave(g, s) for g, s in zip(groups, subscribers, strict=True)))
        return joined

    assert asyncio.run(storm()) == 500


def test_a_burst_of_pushes_larger_than_a_thousand_reaches_every_local_subscriber(private_layer):
    """After Kafka returns, the pusher hands over its backlog at once; the layer must hold it."""
    group = "room.1.message"
    burst = [(group, {"body": "{}", "messageId": n}) for n in range(1, 3001)]

    async def deliver_burst() -> list[int]:
        the_hub, inbox = await hub(), Inbox()
        await the_hub.join(group, inbox.deliver)
        push_many_from_sync(burst)  # blocks this loop: the backlog arrives while the process is busy
        received = await inbox.ids_once(len(burst))
        await the_hub.leave(group, inbox.deliver)
        return received

    assert asyncio.run(deliver_burst()) == list(range(1, 3001))


def test_subscribing_right_after_a_redis_restart_delivers_again(private_layer):
    """The subscriber connection died with the old server; joining afterwards opens a new one."""

    async def join_across_a_restart() -> tuple[int, list[int]]:
        the_hub, before, after = await hub(), Inbox(), Inbox()
        for n in range(1, 33):
            await the_hub.join(f"room.{n}.message", before.deliver)
        await asyncio.to_thread(private_layer.restart)
        await before.until(lambda inbox: inbox.lost == 32)
        joined = [f"room.{n}.message" for n in range(1001, 1033)]
        for group in joined:
            await the_hub.join(group, after.deliver)
        pushes = [(g, {"body": "{}", "messageId": n}) for n, g in enumerate(joined)]
        await asyncio.to_thread(push_many_from_sync, pushes)
        return before.lost, sorted(await after.ids_once(len(joined)))

    told, received = asyncio.run(join_across_a_restart())
    assert told == 32, "every subscriber of the old connection is told its feed has a gap"
    assert received == list(range(32))


def test_on_a_redis_cluster_a_killed_primary_tells_the_subscribers_and_its_replica_delivers_again(
    private_cluster_layer,
):
    cluster = private_cluster_layer
    victim = next(node for node in cluster.primaries() if node.url == cluster.url)

    async def join_across_a_failover() -> tuple[int, list[int]]:
        the_hub, before, after = await hub(), Inbox(), Inbox()
        for n in range(1, 31):  # spread over the three primaries
            await the_hub.join(f"room.{n}.message", before.deliver)
        await asyncio.to_thread(push_from_sync, "room.1.message", {"body": "{}", "messageId": 0})
        await before.ids_once(1)
        await asyncio.to_thread(replicas_in_sync, cluster)
        cluster.kill(victim)
        await before.until(lambda inbox: inbox.lost == 30)
        await asyncio.to_thread(taken_over, cluster, victim)
        joined = [f"room.{n}.message" for n in range(1001, 1031)]
        for group in joined:
            await the_hub.join(group, after.deliver)
        pushes = [(g, {"body": "{}", "messageId": n}) for n, g in enumerate(joined)]
        await asyncio.to_thread(push_many_from_sync, pushes)
        return before.lost, sorted(await after.ids_once(len(joined)))

    told, received = asyncio.run(join_across_a_failover())
    # The hub reads one channel for all its groups: a gap on one shard closes every subscriber.
    assert told == 30
    assert received == list(range(30))


def test_a_hub_first_needed_while_redis_is_away_starts_once_it_is_back(private_layer):
    """A web process whose first client arrives during a Redis outage must not keep a hub
    without a channel: subscribers joined to it would never receive anything."""

    async def first_use_during_an_outage() -> tuple[bool, list[int]]:
        await asyncio.to_thread(private_layer.stop)
        try:
            await hub()
            refused = False
        except LayerUnavailable:
            refused = True
        finally:
            await asyncio.to_thread(private_layer.start)
        inbox = Inbox()
        await (await hub()).join("room.7.message", inbox.deliver)
        await asyncio.to_thread(push_from_sync, "room.7.message", {"body": "{}", "messageId": 7})
        return refused, await inbox.ids_once(1)

    refused, received = asyncio.run(first_use_during_an_outage())
    assert refused
    assert received == [7]


def test_the_first_clients_of_a_process_arriving_together_share_one_hub(private_layer):
    async def together() -> int:
        hubs = await asyncio.gather(*(hub() for _ in range(20)))
        return len({id(h) for h in hubs})

    assert asyncio.run(together()) == 1


def test_a_layer_message_without_a_group_does_not_stop_the_hub(private_layer):
    from channels.layers import get_channel_layer

    async def stray_then_push() -> list[int]:
        the_hub, inbox = await hub(), Inbox()
        await the_hub.join("room.9.message", inbox.deliver)
        assert the_hub.channel is not None
        await get_channel_layer().send(the_hub.channel, {"type": "not.a.push"})
        await asyncio.to_thread(push_from_sync, "room.9.message", {"body": "{}", "messageId": 9})
        return await inbox.ids_once(1)

    assert asyncio.run(stray_then_push()) == [9]

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from realtime.hub import push_from_sync, push_many_from_sync

pytestmark = pytest.mark.integration
SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"


def test_publishing_from_sync_code_survives_a_redis_restart(redis_url):
    push_from_sync("room.1.message", {"body": "{}"})
    subprocess.run([str(SERVICES), "down", "redis"], check=True, capture_output=True)
    subprocess.run([str(SERVICES), "up", "redis"], check=True, capture_output=True)
    push_from_sync("room.1.message", {"body": "{}"})  # the pooled connection died with the old server


def test_publishing_to_many_groups_at_once_stays_within_the_connection_pool(redis_url):
    """The pusher hands over a batch of up to 500 events at once, each room its own group."""
    push_many_from_sync([(f"room.{n}.message", {"body": "{}"}) for n in range(1, 501)])


def test_many_subscriptions_joining_at_once_stay_within_the_connection_pool(redis_url):
    """A reconnect storm: every client of a web process subscribes again within a moment."""
    from realtime.hub import hub

    async def storm() -> int:
        the_hub = await hub()
        groups = [f"room.{n}.message" for n in range(1, 501)]
        subscribers = [lambda push: None for _ in groups]
        await asyncio.gather(*(the_hub.join(g, s) for g, s in zip(groups, subscribers, strict=True)))
        joined = sum(1 for g in groups if the_hub.groups.get(g))
        await asyncio.gather(*(the_hub.leave(g, s) for g, s in zip(groups, subscribers, strict=True)))
        return joined

    assert asyncio.run(storm()) == 500


def test_a_burst_of_pushes_larger_than_a_thousand_reaches_every_local_subscriber(redis_url, unique):
    """After Kafka returns, the pusher hands over its backlog at once; the layer must hold it."""
    from realtime.hub import hub

    group = f"room.{int(unique[:6], 16)}.message"
    burst = [(group, {"body": "{}", "messageId": n}) for n in range(1, 3001)]

    async def deliver_burst() -> list[int]:
        the_hub = await hub()
        received: list[int] = []
        subscriber = lambda push: received.append(push["messageId"])  # noqa: E731
        await the_hub.join(group, subscriber)
        push_many_from_sync(burst)  # blocks this loop: the backlog arrives while the process is busy
        for _ in range(300):
            if len(received) == len(burst):
                break
            await asyncio.sleep(0.1)
        await the_hub.leave(group, subscriber)
        return received

    assert asyncio.run(deliver_burst()) == list(range(1, 3001))


def test_subscribing_right_after_a_redis_restart_delivers_again(redis_url):
    """The subscriber connection died with the old server; joining afterwards opens a new one."""
    from realtime.hub import hub, is_feed_lost

    async def join_across_a_restart() -> tuple[int, list[int]]:
        the_hub = await hub()
        lost: list[str] = []
        warm = [f"room.{n}.message" for n in range(1, 33)]

        def subscriber_of(group: str) -> Callable[[dict], None]:
            def deliver(push: dict) -> None:
                if is_feed_lost(push):
                    lost.append(group)

            return deliver

        for group in warm:
            await the_hub.join(group, subscriber_of(group))
        await asyncio.to_thread(subprocess.run, [str(SERVICES), "down", "redis"], check=True, capture_output=True)
        await asyncio.to_thread(subprocess.run, [str(SERVICES), "up", "redis"], check=True, capture_output=True)
        received: list[int] = []
        joined = [f"room.{n}.message" for n in range(1001, 1033)]
        for group in joined:
            await the_hub.join(group, lambda push: received.append(push["messageId"]))
        pushes = [(g, {"body": "{}", "messageId": n}) for n, g in enumerate(joined)]
        await asyncio.to_thread(push_many_from_sync, pushes)
        for _ in range(100):
            if len(received) == len(joined):
                break
            await asyncio.sleep(0.05)
        return len(lost), sorted(received)

    told, received = asyncio.run(join_across_a_restart())
    assert told == 32, "every subscriber of the old connection is told its feed has a gap"
    assert received == list(range(32))


def test_a_hub_first_needed_while_redis_is_away_starts_once_it_is_back(redis_url):
    """A web process whose first client arrives during a Redis outage must not keep a hub
    without a channel: subscribers joined to it would never receive anything."""
    from realtime.hub import LayerUnavailable, hub

    async def first_use_during_an_outage() -> tuple[bool, list[int]]:
        await asyncio.to_thread(subprocess.run, [str(SERVICES), "down", "redis"], check=True, capture_output=True)
        try:
            await hub()
            refused = False
        except LayerUnavailable:
            refused = True
        finally:
            await asyncio.to_thread(subprocess.run, [str(SERVICES), "up", "redis"], check=True, capture_output=True)
        the_hub = await hub()
        received: list[int] = []
        await the_hub.join("room.7.message", lambda push: received.append(push["messageId"]))
        await asyncio.to_thread(push_from_sync, "room.7.message", {"body": "{}", "messageId": 7})
        for _ in range(40):
            if received:
                break
            await asyncio.sleep(0.05)
        return refused, received

    refused, received = asyncio.run(first_use_during_an_outage())
    assert refused
    assert received == [7]


def test_the_first_clients_of_a_process_arriving_together_share_one_hub(redis_url):
    from realtime.hub import hub

    async def together() -> int:
        hubs = await asyncio.gather(*(hub() for _ in range(20)))
        return len({id(h) for h in hubs})

    assert asyncio.run(together()) == 1


def test_a_layer_message_without_a_group_does_not_stop_the_hub(redis_url):
    from channels.layers import get_channel_layer

    from realtime.hub import hub

    async def stray_then_push() -> list[int]:
        the_hub = await hub()
        received: list[int] = []
        await the_hub.join("room.9.message", lambda push: received.append(push["messageId"]))
        assert the_hub.channel is not None
        await get_channel_layer().send(the_hub.channel, {"type": "not.a.push"})
        await asyncio.to_thread(push_from_sync, "room.9.message", {"body": "{}", "messageId": 9})
        for _ in range(40):
            if received:
                break
            await asyncio.sleep(0.05)
        return received

    assert asyncio.run(stray_then_push()) == [9]

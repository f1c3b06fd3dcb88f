import asyncio
import subprocess
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


def test_subscribing_right_after_a_redis_restart_reconnects_the_pooled_connections(redis_url):
    """Every connection the pool held died with the old server; joining must not fail on them."""
    from realtime.hub import hub

    async def join_across_a_restart() -> tuple[bool, list[str]]:
        the_hub = await hub()
        warm = [f"room.{n}.message" for n in range(1, 33)]
        subscribers = [lambda push: None for _ in warm]
        # Joined at once, these fill the pool with connections that are all fresh (no health check).
        await asyncio.gather(*(the_hub.join(g, s) for g, s in zip(warm, subscribers, strict=True)))
        await asyncio.to_thread(subprocess.run, [str(SERVICES), "down", "redis"], check=True, capture_output=True)
        await asyncio.to_thread(subprocess.run, [str(SERVICES), "up", "redis"], check=True, capture_output=True)
        joined = [f"room.{n}.message" for n in range(1001, 1033)]
        await asyncio.gather(*(the_hub.join(g, lambda push: None) for g in joined))
        layer = the_hub.layer
        assert layer is not None
        members = [await layer.connection(0).zcard(layer._group_key(g)) for g in joined]
        return all(members), joined

    all_joined, groups = asyncio.run(join_across_a_restart())
    assert all_joined, f"some of {groups} have no member in Redis"

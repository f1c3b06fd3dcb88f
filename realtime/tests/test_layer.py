"""The Redis pub/sub channel layer against a real Redis of the test's own: nothing it loses goes unseen."""

import asyncio
import contextlib
import os
import threading

import pytest
import redis

from realtime.layer import LayerUnavailable, RedisPubSubLayer

pytestmark = pytest.mark.integration
CEILING_S = 30  # what a wait may take before the test fails; far above what it takes
# A confirmation timeout no test waits out: a wait that ends within CEILING_S did not wait for it.
NEVER_S = 100.0


@pytest.fixture
def admin(private_redis):
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    yield client
    client.close()


def layer_for(url: str, unique: str, **options) -> RedisPubSubLayer:
    return RedisPubSubLayer(url, prefix=f"test-{unique}", **options)


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


def kill_our_subscriber_connection(admin: redis.Redis) -> None:
    ours = [c for c in admin.client_list(_type="pubsub") if c["name"] == f"chat-layer-{os.getpid()}"]
    assert ours, "the subscriber connection is named for CLIENT LIST"
    for client in ours:
        admin.client_kill_filter(_id=client["id"])


def test_a_sustained_stream_over_many_groups_arrives_whole_and_in_order(private_redis, unique):
    layer = layer_for(private_redis.url, unique)
    groups = [f"room.{n}.message" for n in range(100)]
    per_group = 300

    def publish() -> None:
        for n in range(per_group):
            layer.group_send_many((g, {"group": g, "n": n}) for g in groups)

    async def run() -> dict[str, list[int]]:
        channel = await layer.new_channel("hub.")
        for group in groups:
            await layer.group_add(group, channel)
        publisher = threading.Thread(target=publish)
        publisher.start()
        seen: dict[str, list[int]] = {g: [] for g in groups}
        for _ in range(len(groups) * per_group):
            message = await next_message(layer, channel)  # raises on a gap
            seen[message["group"]].append(message["n"])
        publisher.join()
        return seen

    seen = asyncio.run(run())
    assert all(numbers == list(range(per_group)) for numbers in seen.values())


def test_a_published_message_reaches_a_group_added_just_before(private_redis, unique):
    """group_add returns once Redis confirmed the subscription: no gap before the live feed."""
    layer = layer_for(private_redis.url, unique)
    publisher = redis.Redis.from_url(private_redis.url)

    async def run() -> list[int]:
        channel = await layer.new_channel("hub.")
        for n in range(200):
            group = f"room.{n}.message"
            await layer.group_add(group, channel)
            # A plain client, as another process would publish, right after the join returned.
            publisher.publish(layer._group_name(group), f'{{"n": {n}}}')
        return [(await next_message(layer, channel))["n"] for _ in range(200)]

    assert asyncio.run(run()) == list(range(200))


def test_a_dropped_connection_tells_every_channel_and_the_next_subscription_reconnects(private_redis, unique, admin):
    layer = layer_for(private_redis.url, unique)

    async def run() -> dict:
        channel = await layer.new_channel("hub.")
        await layer.group_add("room.1.message", channel)
        kill_our_subscriber_connection(admin)
        await until_the_gap(layer, channel)
        await layer.group_add("room.2.message", channel)
        await layer.group_send("room.2.message", {"after": True})
        return await next_message(layer, channel)

    assert asyncio.run(run()) == {"after": True}


def test_a_reader_too_far_behind_is_cut_off_and_told_never_skipped(private_redis, unique, admin):
    """Redis drops a subscriber past its output-buffer limit; the layer reports the gap."""
    layer = layer_for(private_redis.url, unique)
    body = "x" * 2000

    async def run() -> list[int]:
        channel = await layer.new_channel("hub.")
        await layer.group_add("room.1.message", channel)
        admin.config_set("client-output-buffer-limit", "pubsub 1mb 512kb 60")
        # Blocks this loop, as a busy process would be, while 20 MB are published to it.
        layer.group_send_many(("room.1.message", {"n": n, "body": body}) for n in range(10_000))
        return [m["n"] for m in await until_the_gap(layer, channel)]

    numbers = asyncio.run(run())
    assert numbers == list(range(len(numbers))), "what arrived before the gap is whole and in order"
    assert len(numbers) < 10_000


def test_a_redis_that_stops_answering_is_noticed(private_redis, unique):
    layer = layer_for(private_redis.url, unique, ping_every_s=0.2, silence_limit_s=1.0)

    async def run() -> None:
        channel = await layer.new_channel("hub.")
        await layer.group_add("room.1.message", channel)
        private_redis.pause()
        try:
            await until_the_gap(layer, channel)
        finally:
            private_redis.resume()

    asyncio.run(run())


def test_layers_on_different_redis_databases_do_not_hear_each_other(private_redis, unique):
    base = private_redis.url.rsplit("/", 1)[0]
    first, second = layer_for(f"{base}/1", unique), layer_for(f"{base}/2", unique)

    async def run() -> dict:
        channel = await second.new_channel("hub.")
        await second.group_add("room.1.message", channel)
        # Published one after the other: had the first been heard, it would arrive first.
        await first.group_send("room.1.message", {"from": 1})
        await second.group_send("room.1.message", {"from": 2})
        return await next_message(second, channel)

    assert asyncio.run(run()) == {"from": 2}


def test_subscribing_while_redis_refuses_fails_fast_and_works_once_it_is_back(private_redis, unique):
    layer = layer_for(private_redis.url, unique, confirm_timeout_s=NEVER_S)

    async def run() -> tuple[list[bool], dict]:
        channel = await layer.new_channel("hub.")
        await asyncio.to_thread(private_redis.stop)
        try:
            # Within the ceiling: a refused connection is not waited out for the confirmation.
            attempts = await asyncio.wait_for(
                asyncio.gather(*(layer.group_add("room.1.message", channel) for _ in range(2)), return_exceptions=True),
                CEILING_S,
            )
        finally:
            await asyncio.to_thread(private_redis.start)
        await until_the_gap(layer, channel)  # the gap the outage made is reported first
        await layer.group_add("room.1.message", channel)
        await layer.group_send("room.1.message", {"back": True})
        return [isinstance(a, LayerUnavailable) for a in attempts], await next_message(layer, channel)

    refused, received = asyncio.run(run())
    assert refused == [True, True]
    assert received == {"back": True}


def test_a_join_cancelled_while_connecting_leaves_nothing_that_blocks_the_next(private_redis, unique, admin):
    """A consumer closing mid-join is cancelled; the next join of its group must not hang."""
    layer = layer_for(private_redis.url, unique, confirm_timeout_s=NEVER_S)

    async def run() -> dict:
        channel = await layer.new_channel("hub.")
        kill_our_subscriber_connection(admin)
        await until_the_gap(layer, channel)
        joining = asyncio.ensure_future(layer.group_add("room.1.message", channel))
        await asyncio.sleep(0)  # it is now opening a connection
        joining.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await joining
        await asyncio.wait_for(layer.group_add("room.1.message", channel), CEILING_S)
        await layer.group_send("room.1.message", {"after": True})
        return await next_message(layer, channel)

    assert asyncio.run(run()) == {"after": True}


def test_opening_a_connection_to_a_redis_that_does_not_answer_gives_up(private_redis, unique):
    layer = layer_for(private_redis.url, unique, confirm_timeout_s=1.0)

    async def run() -> None:
        private_redis.pause()
        try:
            await asyncio.wait_for(layer.new_channel("hub."), CEILING_S)
        finally:
            private_redis.resume()

    with pytest.raises(LayerUnavailable):
        asyncio.run(run())

"""The Redis pub/sub channel layer against the real Redis: nothing it loses goes unseen."""

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis

from realtime.layer import LayerUnavailable, RedisPubSubLayer

pytestmark = pytest.mark.integration
SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"


@pytest.fixture
def admin(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def layer_for(redis_url: str, unique: str, **options) -> RedisPubSubLayer:
    return RedisPubSubLayer(redis_url, prefix=f"test-{unique}", **options)


async def drain(layer: RedisPubSubLayer, channel: str, until: float) -> tuple[list[dict], bool]:
    """Messages received on `channel` until it is told of a gap or `until` seconds pass."""
    received: list[dict] = []
    deadline = time.monotonic() + until
    while (left := deadline - time.monotonic()) > 0:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), left))
        except LayerUnavailable:
            return received, True
        except TimeoutError:
            break
    return received, False


def test_a_sustained_stream_over_many_groups_arrives_whole_and_in_order(redis_url, unique):
    layer = layer_for(redis_url, unique)
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
            message = await asyncio.wait_for(layer.receive(channel), 10)  # raises on a gap
            seen[message["group"]].append(message["n"])
        publisher.join()
        return seen

    seen = asyncio.run(run())
    assert all(numbers == list(range(per_group)) for numbers in seen.values())


def test_a_published_message_reaches_a_group_added_just_before(redis_url, unique):
    """group_add returns once Redis confirmed the subscription: no gap before the live feed."""
    layer = layer_for(redis_url, unique)
    publisher = redis.Redis.from_url(redis_url)

    async def run() -> list[int]:
        channel = await layer.new_channel("hub.")
        for n in range(200):
            group = f"room.{n}.message"
            await layer.group_add(group, channel)
            # A plain client, as another process would publish, right after the join returned.
            publisher.publish(layer._group_name(group), f'{{"n": {n}}}')
        received, _ = await drain(layer, channel, until=2)
        return [m["n"] for m in received]

    assert asyncio.run(run()) == list(range(200))


def test_a_dropped_connection_tells_every_channel_and_the_next_subscription_reconnects(redis_url, unique, admin):
    layer = layer_for(redis_url, unique)

    async def run() -> tuple[bool, list[dict]]:
        channel = await layer.new_channel("hub.")
        await layer.group_add("room.1.message", channel)
        ours = [c for c in admin.client_list(_type="pubsub") if c["name"] == f"chat-layer-{os.getpid()}"]
        assert ours, "the subscriber connection is named for CLIENT LIST"
        for client in ours:
            admin.client_kill_filter(_id=client["id"])
        _, told = await drain(layer, channel, until=5)
        await layer.group_add("room.2.message", channel)
        await layer.group_send("room.2.message", {"after": True})
        received, _ = await drain(layer, channel, until=1)
        return told, received

    told, received = asyncio.run(run())
    assert told
    assert received == [{"after": True}]


def test_a_reader_too_far_behind_is_cut_off_and_told_never_skipped(redis_url, unique, admin):
    """Redis drops a subscriber past its output-buffer limit; the layer reports the gap."""
    layer = layer_for(redis_url, unique)
    limits = admin.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    body = "x" * 2000

    async def run() -> tuple[list[int], bool]:
        channel = await layer.new_channel("hub.")
        await layer.group_add("room.1.message", channel)
        admin.config_set("client-output-buffer-limit", "pubsub 1mb 512kb 60")
        # Blocks this loop, as a busy process would be, while 20 MB are published to it.
        layer.group_send_many(("room.1.message", {"n": n, "body": body}) for n in range(10_000))
        received, told = await drain(layer, channel, until=10)
        return [m["n"] for m in received], told

    try:
        numbers, told = asyncio.run(run())
    finally:
        admin.config_set("client-output-buffer-limit", limits)
    assert told
    assert numbers == list(range(len(numbers))), "what arrived before the gap is whole and in order"
    assert len(numbers) < 10_000


def test_a_redis_that_stops_answering_is_noticed(redis_url, unique, admin):
    layer = layer_for(redis_url, unique, ping_every_s=0.2, silence_limit_s=1.0)
    pid = int(admin.info("server")["process_id"])

    async def run() -> bool:
        channel = await layer.new_channel("hub.")
        await layer.group_add("room.1.message", channel)
        os.kill(pid, signal.SIGSTOP)
        try:
            _, told = await drain(layer, channel, until=5)
        finally:
            os.kill(pid, signal.SIGCONT)
        return told

    assert asyncio.run(run())


def test_layers_on_different_redis_databases_do_not_hear_each_other(redis_url, unique):
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    first, second = layer_for(f"{base}/1", unique), layer_for(f"{base}/2", unique)

    async def run() -> list[dict]:
        channel = await second.new_channel("hub.")
        await second.group_add("room.1.message", channel)
        await first.group_send("room.1.message", {"from": 1})
        await second.group_send("room.1.message", {"from": 2})
        received, _ = await drain(second, channel, until=1)
        return received

    assert asyncio.run(run()) == [{"from": 2}]


def test_subscribing_while_redis_refuses_fails_fast_and_works_once_it_is_back(redis_url, unique):
    layer = layer_for(redis_url, unique)

    async def run() -> tuple[list[bool], float, list[dict]]:
        channel = await layer.new_channel("hub.")
        await asyncio.to_thread(subprocess.run, [str(SERVICES), "down", "redis"], check=True, capture_output=True)
        try:
            started = time.monotonic()
            attempts = await asyncio.gather(
                *(layer.group_add("room.1.message", channel) for _ in range(2)), return_exceptions=True
            )
            waited = time.monotonic() - started
        finally:
            await asyncio.to_thread(subprocess.run, [str(SERVICES), "up", "redis"], check=True, capture_output=True)
        await drain(layer, channel, until=0.5)  # the gap the outage made is reported first
        await layer.group_add("room.1.message", channel)
        await layer.group_send("room.1.message", {"back": True})
        received, _ = await drain(layer, channel, until=1)
        return [isinstance(a, LayerUnavailable) for a in attempts], waited, received

    refused, waited, received = asyncio.run(run())
    assert refused == [True, True]
    assert waited < 3, "a refused connection is not waited out for the confirmation timeout"
    assert received == [{"back": True}]


def test_a_join_cancelled_while_connecting_leaves_nothing_that_blocks_the_next(redis_url, unique, admin):
    """A consumer closing mid-join is cancelled; the next join of its group must not hang."""
    layer = layer_for(redis_url, unique)

    async def run() -> tuple[float, list[dict]]:
        channel = await layer.new_channel("hub.")
        for client in admin.client_list(_type="pubsub"):
            if client["name"] == f"chat-layer-{os.getpid()}":
                admin.client_kill_filter(_id=client["id"])
        await drain(layer, channel, until=5)  # until the loss is reported
        joining = asyncio.ensure_future(layer.group_add("room.1.message", channel))
        await asyncio.sleep(0)  # it is now opening a connection
        joining.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await joining
        started = time.monotonic()
        await layer.group_add("room.1.message", channel)
        waited = time.monotonic() - started
        await layer.group_send("room.1.message", {"after": True})
        received, _ = await drain(layer, channel, until=1)
        return waited, received

    waited, received = asyncio.run(run())
    assert waited < 2
    assert received == [{"after": True}]


def test_opening_a_connection_to_a_redis_that_does_not_answer_gives_up(redis_url, unique, admin):
    layer = layer_for(redis_url, unique, confirm_timeout_s=1.0)
    pid = int(admin.info("server")["process_id"])

    async def run() -> tuple[bool, float]:
        started = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        try:
            await layer.new_channel("hub.")
            refused = False
        except LayerUnavailable:
            refused = True
        finally:
            os.kill(pid, signal.SIGCONT)
        return refused, time.monotonic() - started

    refused, waited = asyncio.run(run())
    assert refused
    assert waited < 3

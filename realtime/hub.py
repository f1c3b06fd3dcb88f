"""Process-local fan-out: one channel-layer subscription per process and group, not per socket.

Each web process keeps its own map of group -> local subscribers and joins the channel-layer
group once, with one channel of its own; a message sent to a group costs one layer message
per process and is then written to every local socket directly. Without Redis (embedded
mode) there is one process, so the hub delivers locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

Push = dict[str, Any]
Deliver = Callable[[Push], None]
# channels_redis forgets group members after a day; members re-join well before that.
REJOIN_EVERY_S = 3600
# Channel-layer calls in flight at once per process: redis-py's pool holds 100 connections and
# fails past that, which a burst of subscriptions or a pusher batch over many rooms reaches.
LAYER_CONCURRENCY = 32
# Dispatched to every local subscriber when the channel layer failed (see Hub._read).
FEED_LOST: Push = {"type": "hub.feed_lost"}
# A call to the channel layer is tried this many times: after a Redis restart each pooled
# connection fails once before redis-py reconnects it.
LAYER_ATTEMPTS = 3
LAYER_ERRORS = (RedisConnectionError, OSError)


class LayerUnavailable(RedisConnectionError):
    """The channel layer kept failing: the caller's feed cannot be trusted."""


def is_feed_lost(push: Push) -> bool:
    return push.get("type") == FEED_LOST["type"]


class Hub:
    def __init__(self) -> None:
        self.groups: dict[str, set[Deliver]] = defaultdict(set)
        self.loop = asyncio.get_running_loop()
        self.layer = get_channel_layer() if settings.REDIS_URL else None
        self.channel: str | None = None
        self._gate = asyncio.Semaphore(LAYER_CONCURRENCY)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.layer is not None:
            self.channel = await self.layer.new_channel("hub.")
            self._tasks.append(asyncio.create_task(self._read()))
            self._tasks.append(asyncio.create_task(self._rejoin()))

    async def join(self, group: str, deliver: Deliver) -> None:
        members = self.groups[group]
        first = not members
        members.add(deliver)
        if first and self.layer is not None:
            try:
                await self._call(self.layer.group_add, group, self.channel)
            except LayerUnavailable:
                members.discard(deliver)
                if not members:
                    del self.groups[group]
                raise

    async def leave(self, group: str, deliver: Deliver) -> None:
        members = self.groups.get(group)
        if not members:
            return
        members.discard(deliver)
        if not members:
            del self.groups[group]
            if self.layer is not None:
                # On failure the membership expires; pushes to it find no local subscriber.
                with contextlib.suppress(LayerUnavailable):
                    await self._call(self.layer.group_discard, group, self.channel)

    async def publish(self, group: str, push: Push) -> None:
        """Send to every subscriber of the group on every web process."""
        if self.layer is not None:
            await self._call(self.layer.group_send, group, {"type": "hub.push", "group": group, **push})
        else:
            self.dispatch(group, push)

    def dispatch(self, group: str, push: Push) -> None:
        _deliver(group, list(self.groups.get(group, ())), push)

    async def _call(self, operation: Callable[..., Awaitable[None]], *args: Any) -> None:
        await _layer_call(self._gate, operation, *args)

    async def _read(self) -> None:
        assert self.layer is not None
        assert self.channel is not None
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("reading the channel layer failed; retrying")
                self._feed_lost()
                await asyncio.sleep(1)
                continue
            self.dispatch(message["group"], message)

    def _feed_lost(self) -> None:
        """Tell every subscriber its feed has a gap, and forget the group memberships.

        A Redis that failed may have lost pushes in flight and, after a restart, every group
        membership; the subscribers close so their clients reconnect (and recover missed
        messages with since-message-id), and their new subscriptions join the groups again.
        """
        groups, self.groups = self.groups, defaultdict(set)
        for group, members in groups.items():
            _deliver(group, list(members), FEED_LOST)

    async def _rejoin(self) -> None:
        assert self.layer is not None
        while True:
            await asyncio.sleep(REJOIN_EVERY_S)
            for group in list(self.groups):
                try:
                    await self._call(self.layer.group_add, group, self.channel)
                except LayerUnavailable:
                    logger.warning("could not renew the membership of %s; trying at the next round", group)


_hub: Hub | None = None


async def hub() -> Hub:
    """This process's hub, created on the event loop that serves its sockets."""
    global _hub
    if _hub is None or _hub.loop is not asyncio.get_running_loop():
        _hub = Hub()
        await _hub.start()
    return _hub


_publisher_loop: asyncio.AbstractEventLoop | None = None
_publisher_lock = threading.Lock()


def _publisher() -> asyncio.AbstractEventLoop:
    """A loop of its own for publishing from synchronous code, kept for the process's life.

    async_to_sync would make a new loop, and with it a new Redis connection, for every call.
    """
    global _publisher_loop
    with _publisher_lock:
        if _publisher_loop is None:
            _publisher_loop = asyncio.new_event_loop()
            threading.Thread(target=_publisher_loop.run_forever, name="hub-publisher", daemon=True).start()
        return _publisher_loop


def push_many_from_sync(pushes: list[tuple[str, Push]]) -> None:
    """Publish from synchronous code (the pusher role, logout), all at once, in order per group."""
    if not pushes:
        return
    if settings.REDIS_URL:
        layer = get_channel_layer()

        by_group: dict[str, list[Push]] = defaultdict(list)
        for group, push in pushes:
            by_group[group].append(push)

        async def send_all() -> None:
            gate = asyncio.Semaphore(LAYER_CONCURRENCY)

            async def send_group(group: str, items: list[Push]) -> None:
                for push in items:  # in order: one room's messages must not overtake each other
                    await _layer_call(gate, layer.group_send, group, {"type": "hub.push", "group": group, **push})

            await asyncio.gather(*(send_group(g, items) for g, items in by_group.items()))

        asyncio.run_coroutine_threadsafe(send_all(), _publisher()).result(timeout=30)
    elif _hub is not None:
        # Embedded mode: the only process; hand the pushes to the loop that owns the sockets.
        for group, push in pushes:
            _hub.loop.call_soon_threadsafe(_hub.dispatch, group, push)


def push_from_sync(group: str, push: Push) -> None:
    push_many_from_sync([(group, push)])


def room_group(room_id: int, topic: str) -> str:
    """The group behind /topic/<topic>/roomId/<room_id>."""
    return f"room.{room_id}.{topic}"


def user_group(customer_id: int, topic: str) -> str:
    """The group behind /user/topic/<topic> of one customer."""
    return f"user.{customer_id}.{topic}"


def token_group(token_id: str) -> str:
    return f"token.{token_id}"


async def _layer_call(gate: asyncio.Semaphore, operation: Callable[..., Awaitable[None]], *args: Any) -> None:
    """One channel-layer call, tried again on a connection left broken by a Redis restart.

    A retried group_send may deliver twice if Redis ran it and the reply was lost; subscribers
    drop a message they already have by its messageId.
    """
    for attempt in range(1, LAYER_ATTEMPTS + 1):
        try:
            async with gate:
                await operation(*args)
            return
        except LAYER_ERRORS as exc:
            if attempt == LAYER_ATTEMPTS:
                raise LayerUnavailable(str(exc)) from exc
            logger.warning("the channel layer failed (%s); trying again", exc)
            await asyncio.sleep(0.1 * attempt)


def _deliver(group: str, members: list[Deliver], push: Push) -> None:
    """Hand `push` to each member; one failing subscriber does not keep it from the others."""
    for deliver in members:
        try:
            deliver(push)
        except Exception:
            logger.exception("delivering to a subscriber of %s failed", group)

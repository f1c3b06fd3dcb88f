"""Process-local fan-out: one channel-layer subscription per process and group, not per socket.

Each web process keeps its own map of group -> local subscribers and adds its one channel to
the channel-layer group (realtime/layer.py: a Redis pub/sub subscription); a message sent to a
group costs one layer message per process and is then written to every local socket directly.
Without Redis (embedded mode) there is one process, so the hub delivers locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from realtime import membership
from realtime.layer import LAYER_ERRORS, LayerUnavailable, RedisPubSubLayer

logger = logging.getLogger(__name__)

Push = dict[str, Any]
Deliver = Callable[[Push], None]
# Channel-layer calls in flight at once per process: a reconnect storm subscribes every client
# of a process again within a moment.
LAYER_CONCURRENCY = 32
# Dispatched to every local subscriber when the channel layer failed (see Hub._read).
FEED_LOST: Push = {"type": "hub.feed_lost"}
# The group every web process's hub joins at start: {roomId, customerIds} who lost access to a
# room, so every process forgets their membership, whether or not it holds a session of theirs.
ACCESS_GROUP = "access.revoked"
REJOIN_EVERY_S = 1.0


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
        self._starting: asyncio.Future[None] | None = None
        self._background: set[asyncio.Future[None]] = set()

    async def ready(self) -> None:
        """Start once: a channel of its own and the task reading it. A failed start is retried.

        No subscriber may join before the channel exists: its pushes would have nowhere to go.
        """
        starting = self._starting
        if starting is None or (starting.done() and not self.started):
            starting = self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(starting)

    @property
    def started(self) -> bool:
        starting = self._starting
        return starting is not None and starting.done() and not starting.cancelled() and starting.exception() is None

    async def _start(self) -> None:
        if self.layer is not None and self.channel is None:
            self.channel = await self.layer.new_channel("hub.")
        # Before the reader starts, so its task is not left behind by a start that failed here.
        await self.join(ACCESS_GROUP, self._access_revoked)
        membership.listen()
        if self.layer is not None:
            self._tasks.append(asyncio.create_task(self._read()))

    def _access_revoked(self, push: Push) -> None:
        if is_feed_lost(push):
            # Revocations may have been lost with the feed: no cached answer until it is heard again.
            membership.stop_listening()
            spawn(self._listen_again(), self._background)
        else:
            membership.revoke(push["roomId"], push["customerIds"])

    async def _listen_again(self) -> None:
        """Join the access group again after a gap in the feed, however long Redis stays away."""
        while True:
            try:
                await self.join(ACCESS_GROUP, self._access_revoked)
            except (LayerUnavailable, *LAYER_ERRORS) as exc:
                logger.warning("joining the access group again failed (%r); retrying", exc)
                await asyncio.sleep(REJOIN_EVERY_S)
                continue
            membership.listen()
            return

    async def join(self, group: str, deliver: Deliver) -> None:
        """Subscribe; returns once every push published from now on reaches `deliver`."""
        self.groups[group].add(deliver)
        if self.layer is None:
            return
        try:
            # Every joiner waits for the subscription, not only the first: a replay from the
            # store must not start before the live feed does.
            await self._call(self.layer.group_add, group, self.channel)
        except LayerUnavailable:
            await self.leave(group, deliver)
            raise

    def drop(self, group: str, deliver: Deliver) -> None:
        """Leave at once, inside a dispatch: no later push reaches `deliver`. The channel layer
        forgets the group soon after, unless someone joined it again meanwhile."""
        members = self.groups.get(group)
        if members is None:
            return
        members.discard(deliver)
        if not members:
            del self.groups[group]
            if self.layer is not None:
                spawn(self._discard_unless_joined([group]), self._background)

    async def leave(self, group: str, deliver: Deliver) -> None:
        members = self.groups.get(group)
        if not members:
            return
        members.discard(deliver)
        if not members:
            del self.groups[group]
            if self.layer is not None:
                with contextlib.suppress(*LAYER_ERRORS):
                    await self.layer.group_discard(group, self.channel)

    async def publish(self, group: str, push: Push) -> None:
        """Send to every subscriber of the group on every web process."""
        if self.layer is not None:
            await self._call(self.layer.group_send, group, {"type": "hub.push", "group": group, **push})
        else:
            self.dispatch(group, push)

    def dispatch(self, group: str, push: Push) -> None:
        _deliver(group, list(self.groups.get(group, ())), push)

    async def _call(self, operation: Callable[..., Awaitable[None]], *args: Any) -> None:
        async with self._gate:
            await operation(*args)

    async def _read(self) -> None:
        assert self.layer is not None
        assert self.channel is not None
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except LayerUnavailable:
                self._feed_lost()
                continue
            except Exception:
                logger.exception("reading the channel layer failed; retrying")
                self._feed_lost()
                await asyncio.sleep(1)
                continue
            group = message.get("group")
            if isinstance(group, str):
                self.dispatch(group, message)
            else:
                logger.warning("dropping a channel-layer message without a group: %r", message)

    def _feed_lost(self) -> None:
        """Tell every subscriber its feed has a gap, and forget the group memberships.

        A Redis that failed may have lost pushes in flight and, after a restart, every
        subscription; the subscribers close so their clients reconnect (and recover missed
        messages with since-message-id), and their new subscriptions join the groups again.
        """
        groups, self.groups = self.groups, defaultdict(set)
        for group, members in groups.items():
            _deliver(group, list(members), FEED_LOST)
        # A group joined again on a new connection before this ran would otherwise stay
        # subscribed after its members leave: they leave a group the hub has forgotten.
        spawn(self._discard_unless_joined(list(groups)), self._background)

    async def _discard_unless_joined(self, groups: list[str]) -> None:
        assert self.layer is not None
        for group in groups:
            if group not in self.groups:  # checked and discarded with no await between
                with contextlib.suppress(*LAYER_ERRORS):
                    await self.layer.group_discard(group, self.channel)


_hub: Hub | None = None


def started_hub() -> Hub | None:
    """This loop's hub if it has started, without starting it: only a started hub has members."""
    if _hub is not None and _hub.loop is asyncio.get_running_loop() and _hub.started:
        return _hub
    return None


async def hub() -> Hub:
    """This process's hub, created on the event loop that serves its sockets, and started.

    Raises LayerUnavailable while Redis is away and the hub has not started yet.
    """
    global _hub
    if _hub is None or _hub.loop is not asyncio.get_running_loop():
        _hub = Hub()
    await _hub.ready()
    return _hub


def push_many_from_sync(pushes: list[tuple[str, Push]]) -> None:
    """Publish from synchronous code (the pusher role, logout), pipelined, in order per group."""
    if not pushes:
        return
    if settings.REDIS_URL:
        layer = get_channel_layer()
        assert isinstance(layer, RedisPubSubLayer)
        layer.group_send_many((group, {"type": "hub.push", "group": group, **push}) for group, push in pushes)
    elif _hub is not None:
        # Embedded mode: the only process; hand the pushes to the loop that owns the sockets.
        for group, push in pushes:
            _hub.loop.call_soon_threadsafe(_hub.dispatch, group, push)


def push_from_sync(group: str, push: Push) -> None:
    push_many_from_sync([(group, push)])


# The topics of a room, each behind /topic/<topic>/roomId/<id>.
ROOM_TOPICS = ("message", "message-updates", "onlineStatus", "readMarkers", "typing")


def room_group(room_id: int, topic: str) -> str:
    """The group behind /topic/<topic>/roomId/<room_id>."""
    return f"room.{room_id}.{topic}"


def user_group(customer_id: int, topic: str) -> str:
    """The group behind /user/topic/<topic> of one customer."""
    return f"user.{customer_id}.{topic}"


def sessions_group(customer_id: int) -> str:
    """The group every STOMP session of one customer watches, to be ended (logout, deactivation)."""
    return f"sessions.{customer_id}"


def spawn(work: Coroutine[Any, Any, None], keep: set[asyncio.Future[None]]) -> None:
    """Run `work` soon, keeping a reference in `keep` so it is not collected half-way."""
    task = asyncio.ensure_future(work)
    keep.add(task)
    task.add_done_callback(keep.discard)


def _deliver(group: str, members: list[Deliver], push: Push) -> None:
    """Hand `push` to each member; one failing subscriber does not keep it from the others."""
    for deliver in members:
        try:
            deliver(push)
        except Exception:
            logger.exception("delivering to a subscriber of %s failed", group)

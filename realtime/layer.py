"""The channel layer: Redis pub/sub, one subscription per group and process, no loss unseen.

channels-redis's RedisChannelLayer stores each message in a sorted set per channel and reads it
back with one blocking pop per message. In the sustained-load benchmark a web process read its
hub channel that way minutes behind the pusher, and the layer dropped every message that waited
past its expiry without a word. Here Redis pushes each message of a subscribed group down one
connection per process, which reads them as fast as it parses them; a message is lost only in
ways the reader sees:

- the connection drops: Redis restarted, the network failed, or Redis closed a subscriber that
  fell more than its `client-output-buffer-limit pubsub` behind;
- Redis stops answering the reader's pings.

Then every `receive` raises LayerUnavailable once and the layer forgets its groups: the hub
closes its subscribers with 4012, and their clients reconnect and recover by messageId.

`group_add` returns once Redis confirms the subscription, so whatever is published after it
reaches the channel: a subscriber replaying missed messages from the store cannot fall into a
gap between its replay and its live feed.

Pub/sub channels are server-wide, not per Redis database: their names carry the prefix and the
database number so deployments sharing a server stay apart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
from channels.layers import BaseChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infrastructure.observability import metrics

logger = logging.getLogger(__name__)

Message = dict[str, Any]
# Publishes sent in one pipeline by group_send_many. Publishing clients keep redis-py's own
# retries (with backoff) for a connection a Redis restart left broken.
PUBLISH_CHUNK = 1000
LAYER_ERRORS = (RedisError, OSError)


class LayerUnavailable(RedisConnectionError):
    """The channel layer failed: messages sent through it meanwhile may be lost."""


class RedisPubSubLayer(BaseChannelLayer):
    extensions = ["groups"]

    def __init__(
        self,
        url: str,
        prefix: str = "chat",
        capacity: int = 10_000,
        ping_every_s: float = 5.0,
        silence_limit_s: float = 30.0,
        confirm_timeout_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(capacity=capacity, **kwargs)
        self.url = url
        db = redis.asyncio.ConnectionPool.from_url(url).connection_kwargs.get("db", 0)
        self.names = f"{prefix}:{db}:"
        self.ping_every_s = ping_every_s
        self.silence_limit_s = silence_limit_s
        self.confirm_timeout_s = confirm_timeout_s
        self._feed: _Feed | None = None
        self._sync: redis.Redis | None = None

    # --- The Channels layer API ---------------------------------------------------------

    async def new_channel(self, prefix: str = "specific.") -> str:
        channel = f"{prefix}{uuid.uuid4().hex}"
        await self.feed().open(channel, self._channel_name(channel))
        return channel

    async def receive(self, channel: str) -> Message:
        return await self.feed().receive(channel)

    async def send(self, channel: str, message: Message) -> None:
        self.require_valid_channel_name(channel)
        await self.feed().publish(self._channel_name(channel), message)

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        feed = self.feed()
        if channel not in feed.queues:
            # Its messages would have nowhere to go: a channel of another process, or none.
            raise RuntimeError(f"group_add needs a channel of this process from new_channel(), not {channel!r}")
        await feed.subscribe(self._group_name(group), channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await self.feed().unsubscribe(self._group_name(group), channel)

    async def group_send(self, group: str, message: Message) -> None:
        self.require_valid_group_name(group)
        await self.feed().publish(self._group_name(group), message)

    # --- From synchronous code ----------------------------------------------------------

    def group_send_many(self, messages: Iterable[tuple[str, Message]]) -> None:
        """Publish to many groups from synchronous code (the pusher), in order, pipelined.

        A pipeline tried again after a connection failure may deliver some messages twice;
        subscribers drop a message they already have by its messageId.
        """
        encoded = [(self._group_name(group), json.dumps(message)) for group, message in messages]
        for start in range(0, len(encoded), PUBLISH_CHUNK):
            pipe = self._sync_client().pipeline(transaction=False)
            for name, data in encoded[start : start + PUBLISH_CHUNK]:
                pipe.publish(name, data)
            try:
                pipe.execute()
            except LAYER_ERRORS as exc:
                raise LayerUnavailable(f"publishing to Redis failed: {exc}") from exc

    # --- Inside ------------------------------------------------------------------------

    def feed(self) -> _Feed:
        """This process's subscriber, on the running event loop (tests run several loops)."""
        loop = asyncio.get_running_loop()
        if self._feed is None or self._feed.loop is not loop:
            self._feed = _Feed(self, loop)
        return self._feed

    def _group_name(self, group: str) -> str:
        return f"{self.names}group:{group}"

    def _channel_name(self, channel: str) -> str:
        return f"{self.names}channel:{channel}"

    def _sync_client(self) -> redis.Redis:
        if self._sync is None:
            self._sync = redis.Redis.from_url(self.url, socket_connect_timeout=5, socket_timeout=10)
        return self._sync


@dataclass
class _Subscription:
    """One Redis channel this process subscribed to: the local channels it feeds (a specific
    channel feeds only itself), and the future that is done once Redis confirmed it."""

    channels: set[str]
    confirmed: asyncio.Future[None]


class _Feed:
    """One event loop's subscriber connection, the subscriptions on it and the local queues."""

    def __init__(self, layer: RedisPubSubLayer, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.loop = loop
        # redis-py's asyncio client retries (with backoff) only the errors named here: a pooled
        # connection that a Redis restart closed fails once before it is reopened.
        self.publisher = redis.asyncio.Redis.from_url(
            layer.url,
            socket_connect_timeout=5,
            socket_timeout=10,
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        self.queues: dict[str, asyncio.Queue[Message | LayerUnavailable]] = {}
        self.subscriptions: dict[str, _Subscription] = {}  # by Redis channel name
        self.specific: dict[str, str] = {}  # local channel -> its own Redis channel
        # SUBSCRIBE commands sent and not yet confirmed, in order, per Redis channel name.
        self.unconfirmed: dict[bytes, deque[asyncio.Future[None]]] = {}
        self.connection: redis.asyncio.Connection | None = None
        self.connecting = asyncio.Lock()
        self.tasks: list[asyncio.Task[None]] = []
        self.pings: deque[float] = deque()
        self.failed_connects = 0

    async def open(self, channel: str, name: str) -> None:
        self.queues[channel] = asyncio.Queue(self.layer.capacity)
        try:
            await self.subscribe(name, channel)
        except BaseException:
            del self.queues[channel]
            raise
        self.specific[channel] = name

    async def receive(self, channel: str) -> Message:
        item = await self.queues[channel].get()
        if isinstance(item, LayerUnavailable):
            raise item
        return item

    async def publish(self, name: str, message: Message) -> None:
        try:
            await self.publisher.publish(name, json.dumps(message))
        except LAYER_ERRORS as exc:
            raise LayerUnavailable(f"publishing to Redis failed: {exc}") from exc

    async def subscribe(self, name: str, channel: str) -> None:
        subscription = self.subscriptions.get(name)
        if subscription is not None:
            subscription.channels.add(channel)
        else:
            subscription = self.subscriptions[name] = _Subscription({channel}, self._future())
            try:
                connection = await self._connection()
                await self._send_subscribe(connection, name, subscription)
            except BaseException as exc:
                # Refused, timed out, or cancelled (a consumer closing): if the connection broke,
                # it is lost; otherwise forget this subscription alone. Either way whoever waits
                # for it fails now, and the next join subscribes afresh.
                error = LayerUnavailable(f"subscribing on Redis failed: {exc!r}")
                if isinstance(exc, LAYER_ERRORS):
                    self._lost(exc)
                if self.subscriptions.get(name) is subscription:
                    del self.subscriptions[name]
                if not subscription.confirmed.done():
                    subscription.confirmed.set_exception(error)
                if isinstance(exc, LAYER_ERRORS):
                    raise error from exc
                raise
        confirmed = subscription.confirmed
        if not confirmed.done():
            try:
                await asyncio.wait_for(asyncio.shield(confirmed), self.layer.confirm_timeout_s)
            except TimeoutError:
                raise LayerUnavailable(f"Redis did not confirm the subscription to {name}") from None
        confirmed.result()

    async def unsubscribe(self, name: str, channel: str) -> None:
        subscription = self.subscriptions.get(name)
        if subscription is None or channel not in subscription.channels:
            return
        subscription.channels.discard(channel)
        if subscription.channels:
            return
        del self.subscriptions[name]
        connection = self.connection
        if connection is not None:
            try:
                await connection.send_command("UNSUBSCRIBE", name, check_health=False)
            except LAYER_ERRORS as exc:
                self._lost(exc)

    async def _connection(self) -> redis.asyncio.Connection:
        failures_before = self.failed_connects
        async with self.connecting:
            if self.connection is None:
                if self.failed_connects != failures_before:
                    # Those queued behind a failed attempt fail with it rather than in turn.
                    raise RedisConnectionError("connecting to Redis failed while this waited for it")
                try:
                    async with asyncio.timeout(self.layer.confirm_timeout_s):
                        await self._connect()
                except BaseException:
                    self.failed_connects += 1
                    raise
            assert self.connection is not None
            return self.connection

    async def _connect(self) -> None:
        """Open the subscriber connection; the caller bounds it, handshake replies included."""
        # RESP2: confirmations and messages come as plain replies, not RESP3 pushes that
        # redis-py would hand to a push handler. No socket timeout: _read blocks until a reply.
        # Named for CLIENT LIST.
        pool = redis.asyncio.ConnectionPool.from_url(
            self.layer.url,
            socket_connect_timeout=5,
            socket_timeout=None,
            protocol=2,
            client_name=f"chat-layer-{os.getpid()}",
        )
        connection = pool.make_connection()
        try:
            await connection.connect()
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        self.connection = connection
        self.pings.clear()
        self.tasks = [
            self.loop.create_task(self._read(connection)),
            self.loop.create_task(self._ping(connection)),
        ]
        # A channel of this process keeps its own Redis channel across reconnections.
        for channel, name in self.specific.items():
            self.subscriptions[name] = subscription = _Subscription({channel}, self._future())
            await self._send_subscribe(connection, name, subscription)

    async def _send_subscribe(
        self, connection: redis.asyncio.Connection, name: str, subscription: _Subscription
    ) -> None:
        # Appended and written with no await between: confirmations arrive in this order.
        self.unconfirmed.setdefault(name.encode(), deque()).append(subscription.confirmed)
        await connection.send_command("SUBSCRIBE", name, check_health=False)

    async def _read(self, connection: redis.asyncio.Connection) -> None:
        try:
            while True:
                # The connection has no socket timeout (see _connect): each read waits for the
                # next reply however long that takes, and _ping judges silence.
                reply = await connection.read_response()
                kind = reply[0]
                if kind == b"message":
                    await self._route(reply[1].decode(), reply[2])
                elif kind == b"subscribe":
                    waiting = self.unconfirmed.get(reply[1])
                    if waiting:
                        confirmed = waiting.popleft()
                        if not confirmed.done():
                            confirmed.set_result(None)
                        if not waiting:
                            del self.unconfirmed[reply[1]]
                elif kind == b"pong" and self.pings:
                    metrics.LAYER_LAG.set(self.loop.time() - self.pings.popleft())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever broke the connection, the feed has a gap
            if connection is self.connection:
                self._lost(exc)

    async def _route(self, name: str, data: bytes) -> None:
        subscription = self.subscriptions.get(name)
        if subscription is None:
            return  # unsubscribed while it was on its way
        message = json.loads(data)
        for channel in tuple(subscription.channels):  # a subscriber may leave while a full queue holds us
            queue = self.queues.get(channel)
            if queue is None:
                continue
            if queue.full():
                # Stop reading: Redis holds what follows, and drops the connection past its limit.
                await queue.put(message)
            else:
                queue.put_nowait(message)

    async def _ping(self, connection: redis.asyncio.Connection) -> None:
        """Ping through the subscription; the pong comes after every message sent before it.

        Its delay is the reader's lag (the chat_channel_layer_lag_seconds gauge); no pong for
        silence_limit_s means the connection is dead or hopelessly behind.
        """
        while True:
            await asyncio.sleep(self.layer.ping_every_s)
            if self.pings and self.loop.time() - self.pings[0] > self.layer.silence_limit_s:
                self._lost(TimeoutError(f"no answer from Redis for {self.layer.silence_limit_s:.0f} s"))
                return
            self.pings.append(self.loop.time())
            try:
                await connection.send_command("PING", check_health=False)
            except LAYER_ERRORS as exc:
                self._lost(exc)
                return

    def _lost(self, exc: BaseException) -> None:
        """The feed has a gap: tell every channel once, forget the groups, drop the connection."""
        connection, self.connection = self.connection, None
        if connection is None:
            return
        logger.warning("the Redis subscriber connection failed (%s); its channels are told", exc)
        metrics.LAYER_FEED_LOST.inc()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.tasks = []
        self.loop.create_task(connection.disconnect(nowait=True))
        error = LayerUnavailable(f"the channel layer lost its Redis connection: {exc}")
        waiting = [s.confirmed for s in self.subscriptions.values()]
        for confirmed in [*waiting, *(f for w in self.unconfirmed.values() for f in w)]:
            if not confirmed.done():
                confirmed.set_exception(error)
        self.subscriptions.clear()
        self.unconfirmed.clear()
        for queue in self.queues.values():
            # Whatever waits here is recovered with the rest of the gap.
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(error)

    def _future(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.loop.create_future()
        # A subscription nobody waits for any more must not log "exception never retrieved".
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return future

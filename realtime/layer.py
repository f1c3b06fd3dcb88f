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

On a Redis Cluster (`cluster=True`, the url naming one of its nodes) the layer uses sharded
pub/sub: each name lives on the primary that holds its slot, which SPUBLISH reaches and where
the layer keeps one subscriber connection for SSUBSCRIBE, so the fan-out spreads over the
shards. A gap is then one shard's: its connection lost, its pings unanswered, a MOVED answer,
or a `sunsubscribe` the layer did not ask for (Redis sends one when a slot moves away) tells
the channels subscribed there, and the slot map is read again before the next subscription.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
from channels.layers import BaseChannelLayer
from redis.asyncio.connection import AbstractConnection
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infrastructure.observability import metrics

logger = logging.getLogger(__name__)

Message = dict[str, Any]
Address = tuple[str, int]  # a Redis node's host and port
Failures = collections.Counter[Address | None]  # failed connection attempts (None: reading the slot map)
# Publishes sent in one pipeline by group_send_many. Publishing clients keep redis-py's own
# retries (with backoff) for a connection a Redis restart left broken.
PUBLISH_CHUNK = 1000
# A cluster client raises RedisClusterException (no RedisError) when no node answers or a slot
# has no primary yet, as during a failover: the layer is away then too.
LAYER_ERRORS = (RedisError, RedisClusterException, OSError)
# What one node may take to answer CLUSTER SLOTS before the next is asked.
SLOT_MAP_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class _Dialect:
    """The commands and replies of one kind of pub/sub."""

    subscribe: str
    unsubscribe: str
    message: bytes
    subscribed: bytes
    unsubscribed: bytes


PLAIN = _Dialect("SUBSCRIBE", "UNSUBSCRIBE", b"message", b"subscribe", b"unsubscribe")
SHARDED = _Dialect("SSUBSCRIBE", "SUNSUBSCRIBE", b"smessage", b"ssubscribe", b"sunsubscribe")


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
        cluster: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(capacity=capacity, **kwargs)
        self.url = url
        db = redis.asyncio.ConnectionPool.from_url(url).connection_kwargs.get("db", 0)
        self.names = f"{prefix}:{db}:"
        self.ping_every_s = ping_every_s
        self.silence_limit_s = silence_limit_s
        self.confirm_timeout_s = confirm_timeout_s
        self.cluster = cluster
        self.dialect = SHARDED if cluster else PLAIN
        self._feed: _Feed | None = None
        self._sync: Any = None  # redis.Redis, or redis.RedisCluster

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
            # On a cluster each SPUBLISH goes to the primary of its slot: a group's stay in order.
            try:
                # A cluster client reads the slot map as it is made: it may fail here already.
                pipe = self._sync_client().pipeline(transaction=False)
                publish = pipe.spublish if self.cluster else pipe.publish
                for name, data in encoded[start : start + PUBLISH_CHUNK]:
                    publish(name, data)
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

    def _sync_client(self) -> Any:
        if self._sync is None:
            client_class = redis.RedisCluster if self.cluster else redis.Redis
            self._sync = client_class.from_url(self.url, socket_connect_timeout=5, socket_timeout=10)
        return self._sync


@dataclass
class _Subscription:
    """One Redis channel this process subscribed to: the local channels it feeds (a specific
    channel feeds only itself), the future that is done once Redis confirmed it, and the
    connection it was sent on (None until it was)."""

    channels: set[str]
    confirmed: asyncio.Future[None]
    shard: _Shard | None = None


@dataclass
class _Shard:
    """A subscriber connection: to the one Redis, or to one primary of a cluster."""

    address: Address
    connection: AbstractConnection
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    pings: deque[float] = field(default_factory=deque)
    # Subscriptions sent and not yet confirmed, in order, per Redis channel name.
    unconfirmed: dict[bytes, deque[asyncio.Future[None]]] = field(default_factory=dict)
    # Unsubscriptions sent and not yet answered: any other unsubscribe reply is Redis's own.
    unsubscribing: collections.Counter[bytes] = field(default_factory=collections.Counter)


class _Feed:
    """One event loop's subscriber connections, the subscriptions on them and the local queues."""

    def __init__(self, layer: RedisPubSubLayer, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.loop = loop
        self.publisher = _publisher(layer)
        self.queues: dict[str, asyncio.Queue[Message | LayerUnavailable]] = {}
        self.subscriptions: dict[str, _Subscription] = {}  # by Redis channel name
        self.specific: dict[str, str] = {}  # local channel -> its own Redis channel
        self.shards: dict[Address, _Shard] = {}
        kwargs = redis.asyncio.ConnectionPool.from_url(layer.url).connection_kwargs
        # The node the url names: the one Redis, or where a cluster's slot map is first read.
        self.seed: Address = (kwargs.get("host", ""), int(kwargs.get("port", 0)))
        self.nodes: list[Address] = [self.seed]  # a cluster's nodes, known from its slot map
        self.owners: list[Address | None] | None = None  # a cluster's primary by slot; None: to read
        self.connecting = asyncio.Lock()
        self.failed_connects: Failures = collections.Counter()

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
        data = json.dumps(message)
        try:
            if self.layer.cluster:
                await self.publisher.spublish(name, data)
            else:
                await self.publisher.publish(name, data)
        except LAYER_ERRORS as exc:
            raise LayerUnavailable(f"publishing to Redis failed: {exc}") from exc

    async def subscribe(self, name: str, channel: str) -> None:
        subscription = self.subscriptions.get(name)
        if subscription is not None:
            subscription.channels.add(channel)
        else:
            subscription = await self._start(name, channel)
            # A channel of this process keeps its own Redis channel across a gap: the next
            # subscription after one takes it up again (unconfirmed, as nobody waits for it).
            for own_channel, own in list(self.specific.items()):
                if own not in self.subscriptions:
                    await self._start(own, own_channel)
        confirmed = subscription.confirmed
        if not confirmed.done():
            try:
                await asyncio.wait_for(asyncio.shield(confirmed), self.layer.confirm_timeout_s)
            except TimeoutError:
                raise LayerUnavailable(f"Redis did not confirm the subscription to {name}") from None
        confirmed.result()

    async def _start(self, name: str, channel: str) -> _Subscription:
        """Send the subscription to `name` on the connection to its node; its confirmation comes later."""
        # Registered before the first await: whoever joins meanwhile waits for this one.
        subscription = self.subscriptions[name] = _Subscription({channel}, self._future())
        shard = None
        try:
            shard = await self._shard_for(name)
            # Appended and written with no await between: confirmations arrive in this order.
            subscription.shard = shard
            shard.unconfirmed.setdefault(name.encode(), deque()).append(subscription.confirmed)
            await shard.connection.send_command(self.layer.dialect.subscribe, name, check_health=False)
        except BaseException as exc:
            # Refused, timed out, or cancelled (a consumer closing): if the connection broke,
            # it is lost; otherwise forget this subscription alone. Either way whoever waits
            # for it fails now, and the next join subscribes afresh.
            error = LayerUnavailable(f"subscribing on Redis failed: {exc!r}")
            if isinstance(exc, LAYER_ERRORS) and shard is not None:
                self._lost(shard, exc)
            if self.subscriptions.get(name) is subscription:
                del self.subscriptions[name]
            if not subscription.confirmed.done():
                subscription.confirmed.set_exception(error)
            if isinstance(exc, LAYER_ERRORS):
                raise error from exc
            raise
        return subscription

    async def unsubscribe(self, name: str, channel: str) -> None:
        subscription = self.subscriptions.get(name)
        if subscription is None or channel not in subscription.channels:
            return
        subscription.channels.discard(channel)
        if subscription.channels:
            return
        del self.subscriptions[name]
        shard = subscription.shard
        if shard is None or self.shards.get(shard.address) is not shard:
            return
        shard.unsubscribing[name.encode()] += 1
        try:
            await shard.connection.send_command(self.layer.dialect.unsubscribe, name, check_health=False)
        except LAYER_ERRORS as exc:
            self._lost(shard, exc)

    # --- Connections --------------------------------------------------------------------

    async def _shard_for(self, name: str) -> _Shard:
        """The connection to the node that holds `name`, opened (the slot map read) if need be."""
        failures_before = self.failed_connects.copy()
        async with self.connecting:
            async with asyncio.timeout(self.layer.confirm_timeout_s):
                address = await self._address_for(name, failures_before)
                shard = self.shards.get(address)
                if shard is None:
                    self._unless_failed_meanwhile(address, failures_before)
                    shard = await self._connect(address)
        return shard

    def _unless_failed_meanwhile(self, key: Address | None, failures_before: Failures) -> None:
        if self.failed_connects[key] != failures_before[key]:
            # Those queued behind a failed attempt fail with it rather than in turn.
            raise RedisConnectionError("connecting to Redis failed while this waited for it")

    async def _address_for(self, name: str, failures_before: Failures) -> Address:
        if not self.layer.cluster:
            return self.seed
        if self.owners is None:
            self._unless_failed_meanwhile(None, failures_before)
            try:
                self.owners = await self._read_slot_map()
            except BaseException:
                self.failed_connects[None] += 1
                raise
        address = self.owners[key_slot(name.encode())]
        if address is None:
            raise RedisConnectionError(f"no primary of the cluster serves the slot of {name}")
        return address

    async def _read_slot_map(self) -> list[Address | None]:
        """Ask the cluster's nodes, in turn, which primary serves each slot (CLUSTER SLOTS)."""
        failures = []
        for address in list(self.nodes):
            # Bounded each, so that a node which stopped answering leaves time to ask the next.
            connection = self._open_connection(address, timeout_s=SLOT_MAP_TIMEOUT_S)
            try:
                await connection.connect()
                await connection.send_command("CLUSTER", "SLOTS", check_health=False)
                ranges = await connection.read_response()
            except LAYER_ERRORS as exc:
                failures.append(f"{address}: {exc!r}")
                self.nodes.remove(address)
                self.nodes.append(address)  # asked last next time
                continue
            finally:
                await connection.disconnect(nowait=True)
            owners: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
            nodes: dict[Address, None] = {}
            for start, end, *served_by in ranges:
                # An empty host is the answering node's own (a node that does not know its IP).
                primary, *replicas = [(host.decode() or address[0], int(port)) for host, port, *_ in served_by]
                owners[start : end + 1] = [primary] * (end + 1 - start)
                nodes.update(dict.fromkeys([primary, *replicas]))
            self.nodes = [*nodes, *(known for known in self.nodes if known not in nodes)]
            return owners
        raise RedisConnectionError(f"no node of the Redis Cluster answered CLUSTER SLOTS: {failures}")

    def _open_connection(self, address: Address, timeout_s: float | None = None) -> AbstractConnection:
        # RESP2: confirmations and messages come as plain replies, not RESP3 pushes that
        # redis-py would hand to a push handler. No socket timeout for a subscriber: _read
        # blocks until a reply. Named for CLIENT LIST.
        pool = redis.asyncio.ConnectionPool.from_url(
            self.layer.url,
            socket_connect_timeout=timeout_s or 5,
            socket_timeout=timeout_s,
            protocol=2,
            client_name=f"chat-layer-{os.getpid()}",
        )
        if not self.layer.cluster:
            return pool.make_connection()  # the url's server, by host and port or a socket path
        return pool.connection_class(**{**pool.connection_kwargs, "host": address[0], "port": address[1]})

    async def _connect(self, address: Address) -> _Shard:
        """Open a subscriber connection; the caller bounds it, handshake replies included."""
        connection = self._open_connection(address)
        try:
            await connection.connect()
        except BaseException:
            self.failed_connects[address] += 1
            self.owners = None  # a node gone may be why: read a cluster's map again first
            await connection.disconnect(nowait=True)
            raise
        shard = self.shards[address] = _Shard(address, connection)
        shard.tasks = [self.loop.create_task(self._read(shard)), self.loop.create_task(self._ping(shard))]
        return shard

    # --- Reading ------------------------------------------------------------------------

    async def _read(self, shard: _Shard) -> None:
        dialect = self.layer.dialect
        try:
            while True:
                # The connection has no socket timeout (see _open_connection): each read waits
                # for the next reply however long that takes, and _ping judges silence.
                reply = await shard.connection.read_response()
                # A PING on a connection with no subscription left is answered with plain PONG.
                kind = reply[0] if isinstance(reply, list) else reply
                if kind == dialect.message:
                    await self._route(reply[1].decode(), reply[2])
                elif kind == dialect.subscribed:
                    self._confirm(shard, reply[1])
                elif kind == dialect.unsubscribed:
                    self._unsubscribed(shard, reply[1])
                elif kind in (b"pong", b"PONG") and shard.pings:
                    # Any shard's answer: they are all read by this one loop, which is what lags.
                    metrics.LAYER_LAG.set(self.loop.time() - shard.pings.popleft())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever broke the connection (or a MOVED), the feed has a gap
            self._lost(shard, exc)

    def _confirm(self, shard: _Shard, name: bytes) -> None:
        waiting = shard.unconfirmed.get(name)
        if waiting:
            confirmed = waiting.popleft()
            if not confirmed.done():
                confirmed.set_result(None)
            if not waiting:
                del shard.unconfirmed[name]

    def _unsubscribed(self, shard: _Shard, name: bytes) -> None:
        if shard.unsubscribing[name] > 0:  # the answer to ours
            shard.unsubscribing[name] -= 1
            if not shard.unsubscribing[name]:
                del shard.unsubscribing[name]
            return
        # Redis ended it: the slot moved to another primary, or this node became a replica.
        subscription = self.subscriptions.get(name.decode())
        if subscription is not None and subscription.shard is shard:
            logger.warning("Redis ended the subscription to %s; its channels are told", name.decode())
            metrics.LAYER_FEED_LOST.inc()
            self.owners = None
            self._forget([name.decode()], LayerUnavailable(f"Redis ended the subscription to {name.decode()}"))

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

    async def _ping(self, shard: _Shard) -> None:
        """Ping through the subscriptions; the pong comes after every message sent before it.

        Its delay is the reader's lag (the chat_channel_layer_lag_seconds gauge); no pong for
        silence_limit_s means the connection is dead or hopelessly behind.
        """
        while True:
            await asyncio.sleep(self.layer.ping_every_s)
            if shard.pings and self.loop.time() - shard.pings[0] > self.layer.silence_limit_s:
                self._lost(shard, TimeoutError(f"no answer from Redis for {self.layer.silence_limit_s:.0f} s"))
                return
            shard.pings.append(self.loop.time())
            try:
                await shard.connection.send_command("PING", check_health=False)
            except LAYER_ERRORS as exc:
                self._lost(shard, exc)
                return

    # --- Gaps ---------------------------------------------------------------------------

    def _lost(self, shard: _Shard, exc: BaseException) -> None:
        """A connection has a gap: tell its channels once, forget its subscriptions, drop it."""
        if self.shards.get(shard.address) is not shard:
            return  # already lost
        del self.shards[shard.address]
        self.owners = None  # a failover or a slot move may be why: read the map again first
        logger.warning("the Redis subscriber connection to %s failed (%s); its channels are told", shard.address, exc)
        metrics.LAYER_FEED_LOST.inc()
        current = asyncio.current_task()
        for task in shard.tasks:
            if task is not current:
                task.cancel()
        self.loop.create_task(shard.connection.disconnect(nowait=True))
        error = LayerUnavailable(f"the channel layer lost its Redis connection: {exc}")
        for confirmed in (future for waiting in shard.unconfirmed.values() for future in waiting):
            if not confirmed.done():
                confirmed.set_exception(error)
        self._forget([name for name, s in self.subscriptions.items() if s.shard is shard], error)

    def _forget(self, names: list[str], error: LayerUnavailable) -> None:
        """Drop these subscriptions and tell each channel they fed, once."""
        told: set[str] = set()
        for name in names:
            subscription = self.subscriptions.pop(name)
            if not subscription.confirmed.done():
                subscription.confirmed.set_exception(error)
            told |= subscription.channels
        for channel in told:
            queue = self.queues.get(channel)
            if queue is None:
                continue
            # Whatever waits here is recovered with the rest of the gap.
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(error)

    def _future(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.loop.create_future()
        # A subscription nobody waits for any more must not log "exception never retrieved".
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return future


def _publisher(layer: RedisPubSubLayer) -> Any:
    """The asyncio client that publishes: to the one Redis, or to the primary of each name's slot."""
    if layer.cluster:
        # A cluster client follows moves and failovers itself, retrying with backoff.
        return redis.asyncio.RedisCluster.from_url(layer.url, socket_connect_timeout=5, socket_timeout=10)
    # redis-py's asyncio client retries (with backoff) only the errors named here: a pooled
    # connection that a Redis restart closed fails once before it is reopened.
    return redis.asyncio.Redis.from_url(
        layer.url,
        socket_connect_timeout=5,
        socket_timeout=10,
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )

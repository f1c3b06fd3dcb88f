"""One STOMP session over one WebSocket, whatever carries it (raw frames or SockJS)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any, Protocol

from channels.db import database_sync_to_async
from prometheus_client import Counter

from accounts.tokens import COOKIE_NAME, InvalidToken, Principal
from infrastructure.http.errors import BACKEND_UNAVAILABLE, backend_unavailable_errors
from infrastructure.observability import metrics
from realtime import broadcast, membership
from realtime.hub import (
    LAYER_ERRORS,
    ROOM_TOPICS,
    LayerUnavailable,
    Push,
    hub,
    is_feed_lost,
    room_group,
    sessions_group,
    spawn,
    started_hub,
    user_group,
)
from realtime.recovery import messages_after
from realtime.stomp import (
    Frame,
    FrameParser,
    StompProtocolError,
    encode,
    error_frame,
    message_head,
    message_tail,
    negotiate_heartbeat,
    negotiate_version,
)

logger = logging.getLogger(__name__)

ROOM_DESTINATION = re.compile(rf"^/topic/({'|'.join(map(re.escape, ROOM_TOPICS))})/roomId/([1-9][0-9]{{0,17}})$")
USER_DESTINATIONS = {
    "/user/topic/rooms": "rooms",
    "/user/topic/rooms-removed": "rooms-removed",
    "/user/topic/readStatus": "readStatus",
}
SERVER_HEARTBEAT_MS = 10_000
# WebSocket close codes: 1000 normal; applications may use 4000-4999 (1008 is refused by servers).
CLOSE_ERROR = 4000
CLOSE_SERVER_ERROR = 1011  # the server failed (a backend away, a bug): reconnect
CLOSE_NO_HEARTBEAT = 4002
CLOSE_TOO_SLOW = 4008
CLOSE_FEED_LOST = 4012  # the server's message feed had a gap: reconnect and recover
# Bytes queued for a client that does not read; past this it is disconnected, not buffered.
MAX_QUEUED_BYTES = 1 << 20
# Frames waiting for a socket leave together, this many at most in one WebSocket message.
FRAMES_PER_MESSAGE = 64
MAX_SUBSCRIPTIONS = 200
TYPING_PER_SECOND = 10


class Transport(Protocol):
    async def send_frames(self, frames: list[str]) -> None:
        """Send whole STOMP frames, in order."""

    async def close(self, code: int, reason: str) -> None: ...

    def direct_send(self) -> Callable[[list[bytes]], int | None] | None:
        """A callable that writes whole frames to the socket at once, if the server offers one
        (infrastructure.http.websocket), returning the bytes the socket still holds, or None once
        it is closing. Without it (None) frames go through send_frames, from a writer task."""


@dataclass
class Subscription:
    id: str
    destination: str
    group: str
    deliver: Callable[[Push], None]
    head: bytes  # its MESSAGE frames up to the message-id (stomp.message_head)
    room_id: int | None = None
    # While missed messages are replayed, live ones wait here (recovery after a reconnect).
    held: list[Push] | None = None
    last_message_id: int = 0
    # Access to the room ended during the replay: the subscription ends once the replay is out.
    revoked: bool = False


@dataclass
class Limits:
    typing_window: float = 0.0
    typing_count: int = 0


class _Writes:
    """The sessions that gathered frames for the direct send in this turn of the event loop: one
    callback, run next by the loop, writes them all (one per session would cost each delivery a
    handle). Each session handles its own failures (see StompSession._uncork)."""

    def __init__(self) -> None:
        self.sessions: list[StompSession] = []

    def add(self, session: StompSession) -> None:
        if not self.sessions:
            asyncio.get_running_loop().call_soon(self._write)
        self.sessions.append(session)

    def _write(self) -> None:
        sessions, self.sessions = self.sessions, []
        for session in sessions:
            session._uncork()


# One per event loop, forgotten with it.
_loop_writes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writes] = weakref.WeakKeyDictionary()


def _writes_of(loop: asyncio.AbstractEventLoop) -> _Writes:
    writes = _loop_writes.get(loop)
    if writes is None:
        writes = _loop_writes[loop] = _Writes()
    return writes


class StompSession:
    def __init__(self, transport: Transport, scope: dict[str, Any]) -> None:
        self.transport = transport
        self.scope = scope
        self.parser = FrameParser()
        self.version = "1.0"
        self.principal: Principal | None = None
        self.connection_id = uuid.uuid4().hex
        self.subscriptions: dict[str, Subscription] = {}
        # Ids of subscriptions the server ended (access revoked): a client's UNSUBSCRIBE of one is no error.
        self.ended_ids: set[str] = set()
        self.outgoing: deque[tuple[str, int]] = deque()  # (frame, its size in bytes)
        self.queued_bytes = 0
        self.wakeup = asyncio.Event()
        self.closing = False
        self.last_received = time.monotonic()
        self.send_every = self.expect_every = 0.0
        self.counter = 0
        self.limits = Limits()
        self.tasks: list[asyncio.Task[None]] = []
        self.timers: list[asyncio.TimerHandle] = []
        self.watches: list[tuple[str, Callable[[Push], None]]] = []  # hub groups besides subscriptions
        self.background: set[asyncio.Future[None]] = set()
        self.gone = False  # closed() ran: the transport is gone
        self.direct = transport.direct_send()
        self.corked: list[bytes] = []  # frames for the direct send, written together (see enqueue)
        self.writes = _writes_of(asyncio.get_running_loop()) if self.direct is not None else None

    # --- Transport events -------------------------------------------------------------

    async def opened(self) -> None:
        metrics.WS_CONNECTIONS.inc()
        if self.direct is None:
            self.tasks.append(asyncio.create_task(self._write()))

    async def received(self, data: str | bytes) -> None:
        self.last_received = time.monotonic()
        if self.closing:
            return
        try:
            frames = self.parser.feed(data)
        except StompProtocolError as exc:
            await self.fail("Malformed frame", str(exc))
            return
        try:
            for frame in frames:
                if frame is not None and not self.closing:
                    await self._dispatch(frame)
        except (LayerUnavailable, *LAYER_ERRORS) as exc:
            # Redis is away: the subscription or presence this frame asked for cannot be kept.
            logger.warning("closing connection %s: the channel layer is unavailable (%s)", self.connection_id, exc)
            self._feed_lost()
        except backend_unavailable_errors() as exc:
            logger.warning("closing connection %s: a backend is unavailable (%r)", self.connection_id, exc)
            await self.fail(BACKEND_UNAVAILABLE.message, "Reconnect shortly.", code=CLOSE_SERVER_ERROR)
        except Exception:
            logger.exception("closing connection %s: a frame could not be handled", self.connection_id)
            await self.fail("Internal server error", "Reconnect and try again.", code=CLOSE_SERVER_ERROR)

    async def closed(self) -> None:
        """Release what the session holds; the transport calls it once, however the socket ended."""
        if self.gone:
            return
        self.gone = self.closing = True
        metrics.WS_CONNECTIONS.dec()
        metrics.STOMP_SUBSCRIPTIONS.dec(len(self.subscriptions))
        for task in self.tasks:
            task.cancel()
        for timer in self.timers:
            timer.cancel()
        members = [(s.group, s.deliver) for s in self.subscriptions.values()] + self.watches
        self.subscriptions.clear()
        self.watches.clear()
        the_hub = started_hub()  # not started: nothing of this session joined it
        if the_hub is not None:
            for group, deliver in members:
                await the_hub.leave(group, deliver)
        if self.principal is not None:
            try:
                await broadcast.presence_left(self.principal.customer_id, self.connection_id)
            except Exception as exc:  # noqa: BLE001 - a session that ended must not fail to end
                # The connection's deadline passes and a sweep announces the user offline then.
                logger.warning("could not record that %s left (%r)", self.connection_id, exc)

    # --- Frames -----------------------------------------------------------------------

    async def _dispatch(self, frame: Frame) -> None:
        command = frame.command
        metrics.frame_received(command)
        if self.principal is None and command not in ("CONNECT", "STOMP"):
            await self.fail("Not connected", "Send CONNECT first.")
            return
        handler = {
            "CONNECT": self._connect,
            "STOMP": self._connect,
            "SUBSCRIBE": self._subscribe,
            "UNSUBSCRIBE": self._unsubscribe,
            "SEND": self._send,
            "DISCONNECT": self._disconnect,
        }.get(command)
        if handler is None:
            self.refuse(frame, f"{command} is not supported", "Transactions and acknowledgements are not used here.")
            return
        if await handler(frame) and frame.header("receipt") and command != "DISCONNECT":
            receipt = Frame("RECEIPT", (("receipt-id", frame.header("receipt") or ""),))
            self.enqueue(encode(receipt, self.version), metrics.SENT_RECEIPT)

    async def _connect(self, frame: Frame) -> bool:
        if self.principal is not None:
            self.refuse(frame, "Already connected")
            return False
        version = negotiate_version(frame.header("accept-version"))
        if version is None:
            await self.fail("Unsupported protocol version", "This server speaks STOMP 1.0, 1.1 and 1.2.")
            return False
        self.version = self.parser.version = version
        token = frame.header("jwt_token") or self._cookie_token()
        if not token:
            await self.fail("Authentication required", "Send the jwt_token header or the jwt_token cookie.")
            return False
        try:
            send_ms, expect_ms = negotiate_heartbeat(
                frame.header("heart-beat"), SERVER_HEARTBEAT_MS, SERVER_HEARTBEAT_MS
            )
        except StompProtocolError as exc:
            await self.fail("Malformed heart-beat", str(exc))
            return False
        try:
            # Presence is recorded before CONNECTED goes out: a client that has its CONNECTED is
            # online, so closing another of its tabs right after cannot announce it offline.
            principal = await broadcast.connection_opened(token, self.connection_id)
        except InvalidToken:
            await self.fail("Authentication failed", "The token is invalid, expired or revoked.")
            return False
        self.principal = principal
        self.send_every, self.expect_every = send_ms / 1000, expect_ms / 1000
        headers = (
            ("version", version),
            ("heart-beat", f"{send_ms},{expect_ms}"),
            ("user-name", str(principal.customer_id)),
            ("server", "chatproject/1"),
            ("session", self.connection_id),
        )
        await self._watch_session(principal)
        self.enqueue(encode(Frame("CONNECTED", headers), version), metrics.SENT_CONNECTED)
        if self.send_every or self.expect_every:
            self.tasks.append(asyncio.create_task(self._heartbeats()))
        return True

    async def _watch_session(self, principal: Principal) -> None:
        """Close the session when its token expires, logout revokes it or the customer is deactivated."""
        delay = max(principal.expires_at - time.time(), 0)
        loop = asyncio.get_running_loop()
        self.timers.append(loop.call_later(delay, lambda: self._spawn(self.fail("Session expired"))))

        def ended(push: Push) -> None:
            if is_feed_lost(push):
                self._feed_lost()
            elif push.get("kind") == "revoke":
                self._revoke(push["roomId"])
            elif push.get("tokenId") in (None, principal.token_id):  # None: every token of the customer
                self._spawn(self.fail("Session ended", push.get("reason") or "The session was logged out."))

        group = sessions_group(principal.customer_id)
        self.watches.append((group, ended))
        await (await hub()).join(group, ended)

    async def _subscribe(self, frame: Frame) -> bool:
        assert self.principal is not None
        destination = frame.header("destination")
        sub_id = frame.header("id") or (destination if self.version == "1.0" else None)
        if not destination or not sub_id:
            self.refuse(frame, "SUBSCRIBE needs destination and id headers")
            return False
        if sub_id in self.subscriptions:
            self.refuse(frame, f"Subscription id {sub_id} is already in use")
            return False
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            self.refuse(frame, "Too many subscriptions")
            return False
        since = frame.header("since-message-id")
        if since is not None and not since.isdigit():
            self.refuse(frame, "since-message-id must be a messageId")
            return False
        group, room_id = await self._group_for(destination)
        if group is None:
            self.refuse(
                frame, f"Forbidden destination {destination}", "Subscribe to your own rooms and user topics only."
            )
            return False
        # From here to the join there is no await: a revocation dispatched after the membership
        # check (which would have said no) finds the subscription and ends it.
        head = message_head(destination, sub_id, self.version)
        subscription = Subscription(sub_id, destination, group, lambda push: None, head, room_id=room_id)
        subscription.deliver = lambda push: self._deliver(subscription, push)
        self.subscriptions[sub_id] = subscription
        self.ended_ids.discard(sub_id)
        metrics.STOMP_SUBSCRIPTIONS.inc()
        if since is not None and destination.startswith("/topic/message/"):
            subscription.held = []
        await (await hub()).join(group, subscription.deliver)
        if subscription.held is not None and not await self._recover(subscription, int(since or 0)):
            await self._forget(subscription)
            self.refuse(frame, f"Forbidden destination {destination}", "Subscribe to your own rooms only.")
            return False
        return True

    async def _group_for(self, destination: str) -> tuple[str | None, int | None]:
        assert self.principal is not None
        topic = USER_DESTINATIONS.get(destination)
        if topic is not None:
            return user_group(self.principal.customer_id, topic), None
        match = ROOM_DESTINATION.match(destination)
        if match is None:
            return None, None
        room_id = int(match.group(2))
        if not await membership.is_member(room_id, self.principal.customer_id):
            return None, None
        return room_group(room_id, match.group(1)), room_id

    async def _recover(self, subscription: Subscription, since: int) -> bool:
        """Replay what was missed after `since`, then what arrived meanwhile, without repeats;
        False, and nothing replayed, if PostgreSQL says the customer is not in the room now."""
        assert subscription.room_id is not None
        assert self.principal is not None
        missed = await database_sync_to_async(messages_after, thread_sensitive=False)(
            subscription.room_id, since, self.principal.customer_id
        )
        if missed is None:
            return False
        subscription.last_message_id = since
        for body in missed:
            tail = message_tail(json.dumps(body, ensure_ascii=False).encode())
            self._send_message(subscription, tail, body["messageId"])
        held, subscription.held = subscription.held or [], None
        for push in held:
            self._deliver(subscription, push)
        if subscription.revoked:
            # Removed during the replay, which (read with the membership) held no later message.
            self._end(subscription)
        return True

    async def _forget(self, subscription: Subscription) -> None:
        """Undo a subscription that is refused after all (a revocation may have undone it already)."""
        self.ended_ids.discard(subscription.id)
        if self.subscriptions.get(subscription.id) is subscription:
            del self.subscriptions[subscription.id]
            metrics.STOMP_SUBSCRIPTIONS.dec()
            await (await hub()).leave(subscription.group, subscription.deliver)

    def _revoke(self, room_id: int) -> None:
        """The customer left or was removed from the room: end each subscription to its topics.

        Called inside the hub's dispatch of the revocation, which comes before any push of a
        message committed after the removal: none of those reaches these subscriptions.
        """
        the_hub = started_hub()
        for subscription in [s for s in self.subscriptions.values() if s.room_id == room_id]:
            del self.subscriptions[subscription.id]
            metrics.STOMP_SUBSCRIPTIONS.dec()
            if the_hub is not None:
                the_hub.drop(subscription.group, subscription.deliver)
            if len(self.ended_ids) >= MAX_SUBSCRIPTIONS:
                self.ended_ids.clear()
            self.ended_ids.add(subscription.id)
            if subscription.held is None:
                self._end(subscription)
            else:
                subscription.revoked = True

    def _end(self, subscription: Subscription) -> None:
        """The ERROR frame that ends one subscription; the connection stays open."""
        assert self.principal is not None
        error = error_frame(
            f"Customer {self.principal.customer_id} is no longer a participant of Room {subscription.room_id}",
            details=f"The subscription to {subscription.destination} has ended; the connection stays open.",
            subscription=subscription.id,
        )
        self.enqueue(encode(error, self.version), metrics.SENT_ERROR)

    async def _unsubscribe(self, frame: Frame) -> bool:
        sub_id = frame.header("id") or (frame.header("destination") if self.version == "1.0" else None)
        subscription = self.subscriptions.pop(sub_id or "", None)
        if subscription is None and sub_id in self.ended_ids:
            self.ended_ids.discard(sub_id)
            return True  # the server ended it already (access revoked)
        if subscription is None:
            self.refuse(frame, f"No subscription {sub_id}")
            return False
        metrics.STOMP_SUBSCRIPTIONS.dec()
        await (await hub()).leave(subscription.group, subscription.deliver)
        return True

    async def _send(self, frame: Frame) -> bool:
        assert self.principal is not None
        destination = frame.header("destination")
        if destination == "/app/extendOnline":
            await broadcast.presence_touched(self.principal.customer_id, self.connection_id)
            return True
        if destination == "/app/typing":
            return await self._typing(frame)
        self.refuse(
            frame, f"SEND to {destination} is not allowed", "Clients may send to /app/extendOnline and /app/typing."
        )
        return False

    async def _typing(self, frame: Frame) -> bool:
        assert self.principal is not None
        try:
            body = json.loads(frame.body or b"{}")
            room_id, state = body["roomId"], body.get("isTyping")
            if not isinstance(room_id, int) or isinstance(room_id, bool):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            self.refuse(frame, "Typing needs a JSON body {roomId, isTyping}")
            return False
        now = time.monotonic()
        if now - self.limits.typing_window >= 1.0:
            self.limits.typing_window, self.limits.typing_count = now, 0
        self.limits.typing_count += 1
        if self.limits.typing_count > TYPING_PER_SECOND:
            return True  # over the rate: dropped, the 2 s expiry keeps the indicator honest
        if not await membership.is_member(room_id, self.principal.customer_id):
            self.refuse(
                frame, f"Forbidden: Customer {self.principal.customer_id} is not a participant of Room {room_id}"
            )
            return False
        await broadcast.typing_changed(room_id, self.principal.customer_id, state == 1)
        return True

    async def _disconnect(self, frame: Frame) -> bool:
        receipt = frame.header("receipt")
        if receipt:
            self.enqueue(encode(Frame("RECEIPT", (("receipt-id", receipt),)), self.version), metrics.SENT_RECEIPT)
        await self._shutdown(1000, "Disconnected")
        return True

    # --- Outgoing ---------------------------------------------------------------------

    def _deliver(self, subscription: Subscription, push: Push) -> None:
        if is_feed_lost(push):
            self._feed_lost()
            return
        if push.get("kind") == "revoke":
            # The removal, in the room's own feed in order with its messages: on a Redis Cluster
            # each channel keeps its order, but the sessions' channel and the room's do not
            # keep theirs between them. Never forwarded; ends this customer's subscriptions.
            assert self.principal is not None
            if self.principal.customer_id in push["customerIds"]:
                membership.revoke(push["roomId"], push["customerIds"])
                self._revoke(push["roomId"])
            return
        if subscription.held is not None:
            subscription.held.append(push)
            return
        message_id = push.get("messageId")
        if message_id is not None:
            if message_id <= subscription.last_message_id:
                return  # already replayed during recovery
            subscription.last_message_id = message_id
        # Every local subscriber gets the same push: its frames' common tail is encoded once.
        tail = push.get("tail") or push.setdefault("tail", message_tail(push["body"].encode()))
        self._send_message(subscription, tail, message_id)

    def _feed_lost(self) -> None:
        """Close so the client reconnects and recovers what the gap in the feed may have cost."""
        if self.closing:
            return
        self.closing = True
        self.outgoing.clear()  # the client recovers these too, from its last messageId
        self._spawn(self.transport.close(CLOSE_FEED_LOST, "Message feed interrupted: reconnect and recover"))

    def _send_message(self, subscription: Subscription, tail: bytes, message_id: int | None) -> None:
        """A MESSAGE frame, as stomp.encode_message makes it: the subscription's head, a
        message-id unique in this session (hex digits, "-" and digits: nothing to escape) and
        the message's tail."""
        if message_id is not None:
            subscription.last_message_id = max(subscription.last_message_id, message_id)
        self.counter += 1
        frame = b"".join((subscription.head, f"{self.connection_id}-{self.counter}".encode(), tail))
        self.enqueue(frame, metrics.SENT_MESSAGE)

    def enqueue(self, frame: bytes | str, sent: Counter | None = None) -> None:
        """Queue a frame for the writer; `sent` counts it (by command) once it is queued."""
        if self.closing:
            return
        if self.writes is not None:  # the direct send
            # Written without a task, once this turn of the event loop is over: the frames a
            # burst brings in one turn go out in one write. The socket's buffer is the queue.
            if not self.corked:
                self.writes.add(self)
            self.corked.append(frame if isinstance(frame, bytes) else frame.encode())
            if sent is not None:
                sent.inc()
            return
        size = len(frame) if isinstance(frame, bytes) else len(frame.encode())
        if self.queued_bytes + size > MAX_QUEUED_BYTES:
            self._too_slow()
            return
        self.outgoing.append((frame.decode() if isinstance(frame, bytes) else frame, size))
        self.queued_bytes += size
        if sent is not None:
            sent.inc()
        self.wakeup.set()

    def _uncork(self) -> None:
        """Write what enqueue gathered, up to FRAMES_PER_MESSAGE frames in a WebSocket message;
        what the socket then holds counts against the same limit as the writer task's queue."""
        frames, self.corked = self.corked, []
        if not frames or self.closing:
            return
        assert self.direct is not None
        held: int | None = 0
        try:
            for start in range(0, len(frames), FRAMES_PER_MESSAGE):
                held = self.direct(frames[start : start + FRAMES_PER_MESSAGE])
        except Exception:
            # Frames may be lost: the client must learn it, reconnect and recover them.
            logger.exception("writing to a STOMP client failed")
            self._feed_lost()
            return
        if held is not None and held > MAX_QUEUED_BYTES:
            self._too_slow()

    def _too_slow(self) -> None:
        logger.warning("closing a slow consumer (customer %s)", self.principal and self.principal.customer_id)
        self.closing = True
        self.outgoing.clear()
        self._spawn(self.transport.close(CLOSE_TOO_SLOW, "Too slow: frames were not being read"))

    async def _write(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.outgoing:
                batch = self._next_batch()
                await self.transport.send_frames([text for text, _ in batch])
                self.queued_bytes -= sum(size for _, size in batch)

    def _next_batch(self) -> list[tuple[str, int]]:
        """The next frames to leave together (at most FRAMES_PER_MESSAGE), with their sizes."""
        return [self.outgoing.popleft() for _ in range(min(len(self.outgoing), FRAMES_PER_MESSAGE))]

    async def _heartbeats(self) -> None:
        interval = min(i for i in (self.send_every, self.expect_every) if i > 0)
        while True:
            await asyncio.sleep(interval)
            if self.send_every and not self.outgoing:
                self.enqueue("\n")
            if self.expect_every and time.monotonic() - self.last_received > 2 * self.expect_every + 1:
                await self._shutdown(CLOSE_NO_HEARTBEAT, "No heart-beat from the client")
                return

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        spawn(work, self.background)

    def refuse(self, frame: Frame, message: str, details: str = "") -> None:
        """An ERROR for one refused request; the connection stays open (fail() closes it)."""
        error = error_frame(message, receipt_id=frame.header("receipt"), details=details)
        self.enqueue(encode(error, self.version), metrics.SENT_ERROR)

    async def fail(self, message: str, details: str = "", code: int = CLOSE_ERROR) -> None:
        """An ERROR frame, then close: for protocol, authentication and server failures."""
        if self.closing:
            return
        self.enqueue(encode(error_frame(message, details=details), self.version), metrics.SENT_ERROR)
        await self._shutdown(code, message)

    async def _shutdown(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self._uncork()
        if self.closing:
            return  # writing what was gathered closed it (too slow, or the write failed)
        while self.outgoing:
            await self.transport.send_frames([text for text, _ in self._next_batch()])
        self.closing = True
        await self.transport.close(code, reason)

    def _cookie_token(self) -> str | None:
        for name, value in self.scope.get("headers", []):
            if name == b"cookie":
                cookie: SimpleCookie = SimpleCookie()
                try:
                    cookie.load(value.decode("latin-1"))
                except Exception:  # noqa: BLE001 - an unparsable cookie header is no token
                    return None
                morsel = cookie.get(COOKIE_NAME)
                return morsel.value if morsel else None
        return None

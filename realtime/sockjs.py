"""SockJS: its frames, and its HTTP transports, where one STOMP session is carried by a series
of HTTP requests instead of one WebSocket.

Frames: "o" opens a session, "h" is a heartbeat, "a[...]" carries messages (here, whole STOMP
frames) and "c[code, reason]" closes. Over HTTP, a session begins with its first receiving
request (xhr, xhr_streaming, eventsource, htmlfile) and lives in the process that received it
(nginx routes each session to one process by its id) for as long as its client keeps a
receiving request attached, or comes back within DISCONNECT_DELAY_S; what the client posts to
xhr_send goes to the STOMP session in order.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

from realtime import broadcast
from realtime.session import StompSession

logger = logging.getLogger(__name__)

HEARTBEAT_S = 25.0
# How long a session waits for its client's next receiving request before it ends.
DISCONNECT_DELAY_S = 5.0
# A streaming response ends after this many bytes, and the client opens the next one: a
# browser keeps a whole XHR response in memory until it ends.
STREAM_LIMIT_BYTES = 128 * 1024
# STOMP frames waiting for the client's next receiving request. Past this the STOMP session's
# writer waits, its queue grows, and at its limit the client is closed as too slow: the same
# back-pressure as a WebSocket that is not read.
PENDING_LIMIT_BYTES = 64 * 1024
# Posts to xhr_send waiting for the session to handle them; more wait in their requests.
INBOX_LIMIT = 64
OPEN = "o"
HEARTBEAT = "h"
COMPACT = (",", ":")
ANOTHER_RECEIVER = "c" + json.dumps([2010, "Another connection still open"], separators=COMPACT)


def messages_frame(messages: list[str]) -> str:
    # ASCII only: the frames also travel inside <script> and event streams.
    return "a" + json.dumps(messages, separators=COMPACT)


def close_frame(code: int, reason: str | None) -> str:
    """A close frame; SockJS reserves the codes below 3000, so an application's code is at least that."""
    return "c" + json.dumps([code if code >= 3000 else 3000, reason or "Go away!"], separators=COMPACT)


def parse_messages(raw: str) -> list[str]:
    """What a client sent: a JSON array of strings (or one string). ValueError if it is not."""
    messages: Any = json.loads(raw)
    messages = messages if isinstance(messages, list) else [messages]
    if not all(isinstance(m, str) for m in messages):
        raise ValueError("SockJS messages are strings")
    return messages


class HttpSession:
    """One SockJS session over HTTP: the STOMP session's transport, and its receiving requests' source."""

    def __init__(
        self,
        session_id: str,
        scope: dict[str, Any],
        credential: str | None,
        carried: Callable[[HttpSession, dict[str, Any]], StompSession] = StompSession,
    ) -> None:
        self.session_id = session_id
        self._credential = _digest(credential)
        self.stomp = carried(self, scope)
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._changed = asyncio.Event()  # frames are pending, or the session closed
        self._drained = asyncio.Event()
        self._receiving = False
        self._closed: str | None = None  # the close frame, once closed
        self._inbox: asyncio.Queue[list[str]] = asyncio.Queue(maxsize=INBOX_LIMIT)
        self._inbox_room = asyncio.Event()  # a post was taken from the inbox, or the session closed
        self._tasks: set[asyncio.Task[None]] = set()
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def serves(self, credential: str | None) -> bool:
        """Whether a request may use this session: when it was opened with the jwt_token cookie,
        only a request with the same cookie may (a session id alone is no credential)."""
        return self._credential is None or hmac.compare_digest(self._credential, _digest(credential) or "")

    async def start(self) -> None:
        broadcast.ensure_sweeper()
        await self.stomp.opened()
        self._spawn(self._handle_inbox())

    # --- The STOMP session's transport ------------------------------------------------

    async def send_frames(self, frames: list[str]) -> None:
        while self._pending_bytes >= PENDING_LIMIT_BYTES and not self.closed:
            self._drained.clear()
            await self._drained.wait()
        if self.closed:
            return
        self._pending.extend(frames)
        self._pending_bytes += sum(len(frame) for frame in frames)
        self._changed.set()

    def direct_send(self) -> None:
        """None: frames wait here for the next receiving request."""
        return None

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self._closed = close_frame(code, reason)
        self._wake_all()
        # Released in a task of its own: this may run inside one of the tasks the release cancels.
        self._spawn(self._release())
        if not self._receiving:
            self._expire_soon()

    # --- Requests ---------------------------------------------------------------------

    async def post(self, messages: list[str]) -> None:
        """Messages from xhr_send, handled in order in the session's own task: a request that
        ends early cannot cut a frame's handling short. While INBOX_LIMIT posts wait, the
        request waits for room; a session that ends meanwhile drops them."""
        while not self.closed:
            try:
                self._inbox.put_nowait(messages)
                return
            except asyncio.QueueFull:
                self._inbox_room.clear()
                await self._inbox_room.wait()

    async def frames(self, streaming: bool, opening: bool) -> AsyncGenerator[str, None]:
        """The SockJS frames of one receiving request: while it is attached, frames as they come
        and a heartbeat when nothing came for HEARTBEAT_S; a polling request ends at its first."""
        if self._receiving:
            yield ANOTHER_RECEIVER
            return
        self._receiving = True
        if self._expiry is not None:
            self._expiry.cancel()
        try:
            if opening:
                yield OPEN
                if not streaming:
                    return
            sent = 0
            while True:
                self._changed.clear()
                if self._pending:
                    frame = messages_frame(self._take())
                    yield frame
                    sent += len(frame)
                    if not streaming or sent >= STREAM_LIMIT_BYTES:
                        return
                    continue
                if self._closed is not None:
                    yield self._closed
                    return
                try:
                    await asyncio.wait_for(self._changed.wait(), HEARTBEAT_S)
                except TimeoutError:
                    yield HEARTBEAT
                    if not streaming:
                        return
        finally:
            self._receiving = False
            self._expire_soon()

    # --- Internals --------------------------------------------------------------------

    def _wake_all(self) -> None:
        """Once closed: the receiver sends the close frame, waiting writers and posters give up."""
        for event in (self._changed, self._drained, self._inbox_room):
            event.set()

    def _take(self) -> list[str]:
        frames, self._pending, self._pending_bytes = self._pending, [], 0
        self._drained.set()
        return frames

    async def _handle_inbox(self) -> None:
        while True:
            messages = await self._inbox.get()
            self._inbox_room.set()
            for message in messages:
                await self.stomp.received(message)

    def _expire_soon(self) -> None:
        """End the session unless a receiving request attaches within DISCONNECT_DELAY_S."""
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_later(DISCONNECT_DELAY_S, self._expire)

    def _expire(self) -> None:
        if self._receiving:
            return
        if not self.closed:
            logger.debug("SockJS session %s ended: its client stopped receiving", self.session_id)
            self._closed = close_frame(3000, "Go away!")
            self._wake_all()
            self._spawn(self._release())
        _registry().pop(self.session_id, None)

    async def _release(self) -> None:
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await self.stomp.closed()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = _detached(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _digest(credential: str | None) -> str | None:
    return hashlib.sha256(credential.encode()).hexdigest() if credential else None


_registries: dict[asyncio.AbstractEventLoop, dict[str, HttpSession]] = {}


def _registry() -> dict[str, HttpSession]:
    """This event loop's sessions: the sessions' events and tasks belong to the loop that made them."""
    return _registries.setdefault(asyncio.get_running_loop(), {})


def find(session_id: str, credential: str | None) -> HttpSession | None:
    """The session, if it exists in this process and the request may use it."""
    session = _registry().get(session_id)
    return session if session is not None and session.serves(credential) else None


async def open_or_find(session_id: str, scope: dict[str, Any], credential: str | None) -> tuple[HttpSession, bool]:
    """The session a receiving request names, opened now if it does not exist; and whether it was.

    LookupError if it exists but the request may not use it.
    """
    registry = _registry()
    session = registry.get(session_id)
    if session is not None:
        if not session.serves(credential):
            raise LookupError(session_id)
        return session, False
    session = HttpSession(session_id, scope, credential)
    registry[session_id] = session
    # The session outlives this request: its tasks must not run in the request's context,
    # whose thread for synchronous code (asgiref's) ends with the request.
    await _detached(session.start())
    session._expire_soon()  # unless this request (or another) attaches to receive
    return session, True


def _detached(work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task in a context of its own, as a WebSocket connection's tasks run in the connection's."""
    return asyncio.get_running_loop().create_task(work, context=contextvars.Context())

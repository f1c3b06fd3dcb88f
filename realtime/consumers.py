"""Channels consumers: STOMP over a raw WebSocket, and over SockJS's WebSocket transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from infrastructure.http.websocket import DIRECT_SEND
from realtime import broadcast, sockjs
from realtime.session import StompSession

SUBPROTOCOLS = ("v12.stomp", "v11.stomp", "v10.stomp")


class StompConsumer(AsyncWebsocketConsumer):
    """STOMP frames as WebSocket text messages, at /ws/chat (subprotocol v1x.stomp or none)."""

    session: StompSession

    async def connect(self) -> None:
        offered = self.scope.get("subprotocols") or []
        chosen = next((p for p in SUBPROTOCOLS if p in offered), None)
        await self.accept(subprotocol=chosen)
        broadcast.ensure_sweeper()
        self.session = StompSession(self, self.scope)
        await self.session.opened()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve the socket: each ASGI message to its handler in turn; however it ends (closed,
        failed, cancelled), release the session once.

        Channels' own loop waits on the client and on a channel-layer channel of the socket at
        once, with a new task and an asyncio.wait for every message. This consumer has no such
        channel (the process-wide hub does the fan-out), so it awaits the client alone. And
        Channels runs disconnect() only for a websocket.disconnect message, not when a handler
        raises, so the cleanup lives here rather than there.
        """
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            await self.ended()

    async def ended(self) -> None:
        if hasattr(self, "session"):
            await self.session.closed()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Hand an ASGI message to its handler, without Channels' database cleanup before each.

        Channels closes stale database connections before every handler, in a worker thread:
        a thread hop for every frame a client sends, which was an eighth of a web process's
        CPU while clients connected. A session reaches the database only through
        database_sync_to_async, which does the same cleanup around each call, in the thread
        whose connection it is.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' own handler, without the database cleanup in a worker thread it adds (see
        dispatch): one more thread hop for every connection that closes. The consumer joins no
        channel-layer groups, so there are none to leave."""
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.session.received(text_data if text_data is not None else bytes_data or b"")

    async def send_frames(self, frames: list[str]) -> None:
        await self.send(text_data="".join(frames))

    def direct_send(self) -> Callable[[list[bytes]], int | None] | None:
        """The server's direct send, when the web role's protocol offers it: frames written
        together go in one WebSocket message (direct_message), as send_frames sends them."""
        extension = self.scope.get("extensions", {}).get(DIRECT_SEND)
        if not extension:
            return None
        send, message = extension["send"], self.direct_message
        return lambda frames: send(message(frames))

    @staticmethod
    def direct_message(frames: list[bytes]) -> bytes:
        return frames[0] if len(frames) == 1 else b"".join(frames)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        await super().close(code=code if isinstance(code, int) else 1000)


class SockJsStompConsumer(StompConsumer):
    """SockJS's WebSocket transport: 'o' to open, 'a[...]' messages, 'h' heartbeats, 'c[...]' to close."""

    async def connect(self) -> None:
        await self.accept()
        broadcast.ensure_sweeper()
        await self.send(text_data=sockjs.OPEN)
        self.session = StompSession(self, self.scope)
        await self.session.opened()
        self.heartbeat = asyncio.create_task(self._heartbeat())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if not raw:
            return
        try:
            messages = sockjs.parse_messages(raw)
        except ValueError:
            await self.close(4000, "SockJS messages are JSON arrays of strings")
            return
        for message in messages:
            await self.session.received(message)

    async def ended(self) -> None:
        if hasattr(self, "heartbeat"):
            self.heartbeat.cancel()
        await super().ended()

    async def send_frames(self, frames: list[str]) -> None:
        await self.send(text_data=sockjs.messages_frame(frames))

    @staticmethod
    def direct_message(frames: list[bytes]) -> bytes:
        """The frames in one SockJS message frame, as send_frames sends them."""
        return sockjs.messages_frame([frame.decode() for frame in frames]).encode()

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        await self.send(text_data=sockjs.close_frame(code if isinstance(code, int) else 3000, reason))
        await super().close(code)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(sockjs.HEARTBEAT_S)
            await self.send(text_data=sockjs.HEARTBEAT)

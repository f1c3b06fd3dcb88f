"""The web role's WebSocket protocol: uvicorn's websockets-sansio, plus a direct send.

An ASGI `websocket.send` goes through the server's whole send path for every message: a wait on
the socket's writable event, the sans-I/O connection building a frame object and serialising
it, and a join of its output. A STOMP session fanning one chat message out to a thousand
sockets pays that a thousand times. This protocol offers the application, as the ASGI extension
`DIRECT_SEND` (its "send"), a callable that writes one whole text message to the socket at once: the
WebSocket frame header is a few bytes in front of the payload (a server's frames are not
masked), and the socket's own buffer is the queue. The callable returns the bytes that buffer
still holds, so the application can cut off a client that stops reading; and None once the
connection is closing or closed, when nothing more may be written.

Everything else (the handshake, pings, closes, incoming frames, and `websocket.send` for an
application that does not use the extension) is uvicorn's. Run it with
`uvicorn --ws infrastructure.http.websocket:DirectSendProtocol`.
"""

from __future__ import annotations

import struct
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

# The key in the ASGI scope's "extensions" under which the direct send is offered.
DIRECT_SEND = "chat.websocket.direct_send"

_TEXT_FIN = 0x81  # FIN bit and opcode 1 (text): one whole message per frame


def text_frame(payload: bytes) -> bytes:
    """An unmasked WebSocket text frame carrying `payload` (RFC 6455, section 5.2)."""
    size = len(payload)
    if size < 126:
        head = bytes((_TEXT_FIN, size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", _TEXT_FIN, 126, size)
    else:
        head = struct.pack("!BBQ", _TEXT_FIN, 127, size)
    return head + payload


class DirectSend:
    """Writes whole text messages (UTF-8 bytes) to one connection's socket, in order."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol: WebSocketsSansIOProtocol | None = protocol

    def __call__(self, payload: bytes) -> int | None:
        """Write one text message now; returns the bytes the socket's buffer holds after it, or
        None, writing nothing, when the connection is closing or gone."""
        protocol = self._protocol
        if protocol is None:  # the connection was lost (forget)
            return None
        transport = protocol.transport
        if not protocol.handshake_complete or protocol.close_sent or transport.is_closing():
            return None
        transport.write(text_frame(payload))
        return transport.get_write_buffer_size()

    def forget(self) -> None:
        """The connection is gone: write nothing more, and hold the protocol no longer (it holds
        the scope, which holds this)."""
        self._protocol = None


class DirectSendProtocol(WebSocketsSansIOProtocol):
    direct: DirectSend | None = None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # uvicorn built the scope and created the application's task, which has not run yet:
        # the extension is in the scope before the application reads it. A refused handshake
        # has no scope and no application. (An extension's value is a dict, as ASGI asks.)
        if self.response.status_code == 101:
            self.direct = DirectSend(self)
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions[DIRECT_SEND] = {"send": self.direct}

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.direct is not None:
            self.direct.forget()

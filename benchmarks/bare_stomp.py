"""uvicorn alone: the web role's server with the least application that serves peer.py's client.

The same uvicorn and protocol as the web role (decision 0011's direct send), in one process,
with none of the project: no Django, Channels, token, session check, presence, hub, Redis or
pipeline. A WebSocket at /ws/chat answers a STOMP CONNECT with CONNECTED and a SUBSCRIBE with
its RECEIPT; `POST /command/message` numbers the message, encodes one MESSAGE frame and writes
it to every open socket at once, then answers as the send does (`{"data": {"messageId": N}}`).
What this costs per connection and per delivery is the floor under any cut in our application.

    uvicorn benchmarks.bare_stomp:app --ws infrastructure.http.websocket:DirectSendProtocol --lifespan off
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from infrastructure.http.websocket import DIRECT_SEND

HEAD = (
    b"MESSAGE\ndestination:/topic/message/roomId/%d\ncontent-type:application/json\nsubscription:sub-0\nmessage-id:%d"
)

_sockets: set[Callable[[bytes], int | None]] = set()
_numbers = itertools.count(1)


def connected_answer(greeting: str) -> str:
    """CONNECTED for a CONNECT, and a RECEIPT for each frame that asks for one."""
    frames = []
    for frame in greeting.split("\0"):
        lines = frame.lstrip("\r\n").split("\n")
        if lines[0] == "CONNECT":
            frames.append("CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0")
        receipt = next((line[len("receipt:") :] for line in lines if line.startswith("receipt:")), None)
        if receipt is not None:
            frames.append(f"RECEIPT\nreceipt-id:{receipt}\n\n\0")
    return "".join(frames)


def message_frame(message_id: int, posted: dict[str, Any]) -> bytes:
    """A MESSAGE frame of the fields a chat message's push carries."""
    room = int(posted.get("roomId", 0))
    body = json.dumps(
        {
            "messageId": message_id,
            "roomId": room,
            "customerId": 1,
            "customerFullName": "Bench Poster",
            "content": posted.get("content", ""),
            "createdAt": datetime.now(UTC).isoformat(),
            "editedAt": None,
        }
    ).encode()
    return HEAD % (room, message_id) + b"\ncontent-length:%d\n\n" % len(body) + body + b"\0"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await _socket(scope, receive, send)
    elif scope["type"] == "http":
        await _post(scope, receive, send)


async def _socket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    offered = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": "v12.stomp" if "v12.stomp" in offered else None})
    direct = scope["extensions"][DIRECT_SEND]["send"]
    try:
        while (message := await receive())["type"] == "websocket.receive":
            if answer := connected_answer(message.get("text") or (message.get("bytes") or b"").decode()):
                direct(answer.encode())
                _sockets.add(direct)
    finally:
        _sockets.discard(direct)


async def _post(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] != "POST" or scope["path"] != "/command/message":
        await _answer(send, 404, {"error": "not found"})
        return
    message_id = next(_numbers)
    frame = message_frame(message_id, json.loads(body or b"{}"))
    for direct in list(_sockets):
        direct(frame)
    await _answer(send, 200, {"data": {"messageId": message_id}})


async def _answer(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

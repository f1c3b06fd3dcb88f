"""Events and store comparisons shared by the query-side tests."""

from __future__ import annotations

from typing import Any

from chat_command.events import MessageSent, MessageUpdated, ReadMarkerUpdated, RoomCreated
from chat_command.services import NewMessage, do_send_message
from chat_query import projection
from chat_query.rebuild import replay
from chat_query.store import ReadStore, active_store

T0 = "2026-11-25T10:00:00.000Z"


def project() -> None:
    """Apply everything logged so far, as the projector would."""
    replay(active_store(), progress=False)


def send(room: Any, sender: int, n: int = 1) -> list[int]:
    """Send n messages to the room; their ids."""
    return [do_send_message(sender, NewMessage(room.room_id, f"m{i}", None)).message_id for i in range(n)]


def body(response: Any) -> Any:
    assert response.status_code == 200, response.content
    return response.json()


def room_created(room_id: int, participants: list[int], name: str = "Room") -> RoomCreated:
    return RoomCreated(
        roomId=room_id,
        roomName=name,
        createdBy=participants[-1],
        createdAt=T0,
        participants=[{"id": p, "fullName": f"Person {p}", "joinedAt": T0} for p in participants],
    )


def message(room_id: int, message_id: int, sender: int, second: int = 1) -> MessageSent:
    return MessageSent(
        roomId=room_id,
        messageId=message_id,
        senderId=sender,
        senderFullName=f"Person {sender}",
        content=f"message {message_id}",
        sentAt=f"2026-11-25T10:{second // 60:02d}:{second % 60:02d}.000Z",
    )


def updated(sent: MessageSent, revision: int, change: str = "edited", **state: Any) -> MessageUpdated:
    """`sent` as it is at `revision`: edited (content), deleted, or with reactions."""
    deleted = change == "deleted"
    fields = {
        "content": "" if deleted else f"{sent.content} (revision {revision})",
        "editedAt": None if change != "edited" else f"2026-11-25T11:00:{revision % 60:02d}.000Z",
        "deleted": deleted,
        "reactions": [],
        **state,
    }
    return MessageUpdated(
        roomId=sent.roomId,
        change=change,
        revision=revision,
        messageId=sent.messageId,
        senderId=sent.senderId,
        senderFullName=sent.senderFullName,
        sentAt=sent.sentAt,
        **fields,
    )


def marker(room_id: int, customer_id: int, message_id: int) -> ReadMarkerUpdated:
    return ReadMarkerUpdated(roomId=room_id, customerId=customer_id, lastReadMessageId=message_id)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "rev"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def state_of(store: ReadStore, room_ids: list[int]) -> tuple[Any, Any, Any]:
    views = {v["_id"]: _plain(v) for v in store.views.find({"_id": {"$in": room_ids}})}
    messages = {m["_id"]: _plain(m) for m in store.messages.find({"roomId": {"$in": room_ids}})}
    markers = {
        (m["roomId"], m["customerId"]): m["lastReadMessageId"]
        for m in store.markers.find({"roomId": {"$in": room_ids}})
    }
    return views, messages, markers


def rebuilt(events: list[Any]) -> tuple[Any, Any, Any]:
    views, messages, markers = projection.fold(events)
    return {k: _plain(v) for k, v in views.items()}, {k: _plain(v) for k, v in messages.items()}, markers

"""Events and store comparisons shared by the query-side tests."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from chat_command.events import (
    ADDED,
    LEFT,
    REMOVED,
    SYSTEM,
    MessageSent,
    MessageUpdated,
    ReadMarkerUpdated,
    RoomChanged,
    RoomCreated,
)
from chat_command.services import NewMessage, do_send_message
from chat_query import projection
from chat_query.rebuild import replay
from chat_query.store import ReadStore, active_store

T0 = "2026-11-25T10:00:00.000Z"

# Room ids count up from a random start: two rooms of one run never share an id (random draws
# did, once in about 2,000 runs of a test that makes 100 rooms), and two runs rarely meet.
# Not `random`: hypothesis seeds it per example, which would give every example one room.
_room_ids = itertools.count(1 + secrets.randbelow(10**7))


def room_id() -> int:
    """A room id no other room of this run has."""
    return next(_room_ids)


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


def message(room_id: int, message_id: int, sender: int, second: int = 1, **extra: Any) -> MessageSent:
    """A user's message; `seq=` and the like as keywords (without, as recorded before seqs)."""
    return MessageSent(
        roomId=room_id,
        messageId=message_id,
        senderId=sender,
        senderFullName=f"Person {sender}",
        content=f"message {message_id}",
        sentAt=f"2026-11-25T10:{second // 60:02d}:{second % 60:02d}.000Z",
        **extra,
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
        type=sent.type,
        system=sent.system,
        **fields,
    )


def marker(room_id: int, customer_id: int, message_id: int, seq: int = 0) -> ReadMarkerUpdated:
    return ReadMarkerUpdated(roomId=room_id, customerId=customer_id, lastReadMessageId=message_id, seq=seq)


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


class RoomLog:
    """A room's events as the command side records them, and the simple model of unread counts.

    Every change of membership or name records RoomChanged with the whole room at the next
    revision, then the system message in the actor's name; an addition also moves each new
    member's marker to that message. The model keeps where each customer has read to (their
    marker, their own messages, the message that added them) and counts the messages after it.
    """

    def __init__(self, room_id: int, members: list[int], first_message_id: int = 1) -> None:
        self.room_id, self.members, self.name, self.revision = room_id, list(members), "Room", 0
        self.created = room_created(room_id, members)
        # Membership changes and messages share a topic (and its order); markers have their own.
        self.ordered: list[Any] = []
        self.markers: list[ReadMarkerUpdated] = []
        self.sent: list[MessageSent] = []
        self.read_to: dict[int, int] = {}
        self.marker_of: dict[int, int] = {}
        self.next_id = first_message_id

    def send(self, sender: int, system: dict[str, Any] | None = None) -> MessageSent:
        kind = {} if system is None else {"type": SYSTEM, "system": system}
        seq = len(self.sent) + 1
        sent = message(self.room_id, self.next_id, sender, second=seq, seq=seq, **kind)
        self.next_id += 1
        self.sent.append(sent)
        self.ordered.append(sent)
        self.read_to[sender] = seq
        return sent

    def read(self, reader: int, sent: MessageSent) -> None:
        """As do_mark_read: the marker moves forward only."""
        if sent.messageId > self.marker_of.get(reader, 0):
            self.marker_of[reader] = sent.messageId
            self.markers.append(marker(self.room_id, reader, sent.messageId, seq=sent.seq))
            self.read_to[reader] = max(self.read_to.get(reader, 0), sent.seq)

    def change(self, change: str, actor: int, customer_ids: list[int], name: str | None = None) -> MessageSent:
        self.revision += 1
        if change == ADDED:
            self.members += customer_ids
        elif change in (REMOVED, LEFT):
            self.members = [m for m in self.members if m not in customer_ids]
            for gone in customer_ids:
                self.marker_of.pop(gone, None)  # the participant's row goes, and its marker with it
        self.name = name or self.name
        self.ordered.append(
            RoomChanged(
                roomId=self.room_id,
                change=change,
                revision=self.revision,
                actorId=actor,
                customerIds=customer_ids,
                roomName=self.name,
                createdBy=self.created.createdBy,
                createdAt=T0,
                participants=[{"id": p, "fullName": f"Person {p}", "joinedAt": T0} for p in self.members],
            )
        )
        facts = {"action": change, "actorId": actor, "customerIds": customer_ids, "roomName": self.name}
        note = self.send(actor, facts)
        if change == ADDED:
            for added in customer_ids:
                self.read(added, note)
        return note

    def log(self) -> list[Any]:
        return [self.created, *self.ordered, *self.markers]

    def unread_counts(self) -> dict[str, int]:
        """The model: each member's messages after where they have read to, up to 999."""
        return {str(p): min(999, sum(1 for m in self.sent if m.seq > self.read_to.get(p, 0))) for p in self.members}

"""Events the command side records in its outbox (topics and field names of the reference)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from infrastructure.messaging.events import Event, event_type

USER, SYSTEM = "user", "system"
ADDED, REMOVED, LEFT, RENAMED = "added", "removed", "left", "renamed"


@event_type
@dataclasses.dataclass(frozen=True)
class MessageSent(Event):
    TYPE = "MessageSent"
    TOPIC = "chat-message-sent"
    # A message as sent is its state at revision 0; each MessageUpdated carries a higher one.
    revision: ClassVar[int] = 0

    messageId: int
    senderId: int
    senderFullName: str
    content: str
    sentAt: str
    # The message's place in its room (1, 2, 3, ...): unread counts are differences of these.
    # Defaulted fields are additive: an event recorded before they existed decodes with the default.
    seq: int = 0
    # "user", or "system" for the room's own notes of who added, removed, left or renamed.
    type: str = USER
    # A system message's facts: {"action", "actorId", "customerIds", "roomName"}; None otherwise.
    system: dict[str, Any] | None = None


@event_type
@dataclasses.dataclass(frozen=True)
class RoomCreated(Event):
    TYPE = "RoomCreated"
    TOPIC = "chat-room-created"
    # A room as created is its state at revision 0; each RoomChanged carries a higher one.
    revision: ClassVar[int] = 0

    roomName: str
    createdBy: int
    createdAt: str
    # [{"id": customerId, "fullName": str, "joinedAt": ISO}], targets in request order, then the creator.
    participants: list[dict[str, Any]]


@event_type
@dataclasses.dataclass(frozen=True)
class RoomChanged(Event):
    """People added, removed or gone, or the room renamed: the whole room as it now is.

    Like MessageUpdated, it carries the whole state at `revision`, so the read model keeps the
    state of the highest revision whatever order the events arrive in. It travels on the
    messages' topic, keyed by the room: consumers see a room's membership changes and messages
    in the order PostgreSQL committed them, so a removed member is cut off before any message
    committed after the removal is pushed.
    """

    TYPE = "RoomChanged"
    TOPIC = MessageSent.TOPIC

    change: str  # ADDED | REMOVED | LEFT | RENAMED
    revision: int
    actorId: int
    # Who was added, removed or left; [] for a rename.
    customerIds: list[int]
    roomName: str
    createdBy: int
    createdAt: str
    # As RoomCreated's: [{"id", "fullName", "joinedAt"}], in the room's order.
    participants: list[dict[str, Any]]


@event_type
@dataclasses.dataclass(frozen=True)
class ReadMarkerUpdated(Event):
    TYPE = "ReadMarkerUpdated"
    TOPIC = "read-marker-updated"

    customerId: int
    lastReadMessageId: int
    # The seq of the message read up to (see MessageSent.seq).
    seq: int = 0


@event_type
@dataclasses.dataclass(frozen=True)
class MessageUpdated(Event):
    """A message edited, deleted or reacted to: the whole message as it now is.

    Carrying the whole state at `revision` (not the change) lets the read model keep whichever
    state has the highest revision, so it converges whatever order the events arrive in.
    """

    TYPE = "MessageUpdated"
    TOPIC = "chat-message-updated"

    change: str  # "edited" | "deleted" | "reactions"
    revision: int
    messageId: int
    senderId: int
    senderFullName: str
    content: str
    sentAt: str
    editedAt: str | None
    deleted: bool
    # [{"emoji": str, "customerIds": [int]}], ordered by first use.
    reactions: list[dict[str, Any]]
    # As MessageSent's: a system message keeps its kind and facts through its reactions.
    type: str = USER
    system: dict[str, Any] | None = None


COMMAND_TOPICS = (MessageSent.TOPIC, RoomCreated.TOPIC, ReadMarkerUpdated.TOPIC, MessageUpdated.TOPIC)

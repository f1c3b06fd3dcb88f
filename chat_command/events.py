"""Events the command side records in its outbox (topics and field names of the reference)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from infrastructure.messaging.events import Event, event_type


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


@event_type
@dataclasses.dataclass(frozen=True)
class RoomCreated(Event):
    TYPE = "RoomCreated"
    TOPIC = "chat-room-created"

    roomName: str
    createdBy: int
    createdAt: str
    # [{"id": customerId, "fullName": str, "joinedAt": ISO}], targets in request order, then the creator.
    participants: list[dict[str, Any]]


@event_type
@dataclasses.dataclass(frozen=True)
class ReadMarkerUpdated(Event):
    TYPE = "ReadMarkerUpdated"
    TOPIC = "read-marker-updated"

    customerId: int
    lastReadMessageId: int


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


COMMAND_TOPICS = (MessageSent.TOPIC, RoomCreated.TOPIC, ReadMarkerUpdated.TOPIC, MessageUpdated.TOPIC)

"""Events the projector publishes for the realtime side (topics and fields of the reference)."""

from __future__ import annotations

import dataclasses
from typing import Any

from infrastructure.messaging.events import Event, event_type


@event_type
@dataclasses.dataclass(frozen=True)
class RoomUpdated(Event):
    """The full room view, as the reference's ChatRoomView (timestamps as ISO-8601 strings)."""

    TYPE = "RoomUpdated"
    TOPIC = "room-updated"

    roomName: str
    participantIds: list[int]
    unreadStatus: dict[str, bool]
    lastMessage: dict[str, Any] | None
    createdAt: str
    updatedAt: str
    # Added to the reference's view: messages after each participant's read position, up to 999.
    unreadCount: dict[str, int] = dataclasses.field(default_factory=dict)
    createdBy: int | None = None


@event_type
@dataclasses.dataclass(frozen=True)
class RoomRemoved(Event):
    """Customers who are no longer in the room: it leaves their room lists.

    On the room views' topic, keyed by the room, so it follows every RoomUpdated that still
    named them and no stale view brings the room back to their lists.
    """

    TYPE = "RoomRemoved"
    TOPIC = RoomUpdated.TOPIC

    customerIds: list[int]


@event_type
@dataclasses.dataclass(frozen=True)
class ReadStatusUpdated(Event):
    TYPE = "ReadStatusUpdated"
    TOPIC = "read-status-updated"

    customerId: int
    isUnread: bool


QUERY_TOPICS = (RoomUpdated.TOPIC, ReadStatusUpdated.TOPIC)

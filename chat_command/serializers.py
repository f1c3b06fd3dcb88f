"""The commands' bodies and answers, declared once: services.check_* parse the bodies with them,
and they are the OpenAPI schema's description of /command/*."""

from __future__ import annotations

from rest_framework import serializers

from infrastructure.http.answers import Null, envelope
from infrastructure.http.bodies import MISSING, TYPE, Body, Id, Ids, Text

ROOM_NAME_MAX = 100
ROOM_PARTICIPANTS_MAX = 100
CONTENT_MAX = 4000
IDEMPOTENCY_KEY_MAX = 64

ROOM_EMPTY = "roomName and targetCustomerIds cannot be empty."
MESSAGE_EMPTY = "roomId and content cannot be empty."
MARKER_EMPTY = "roomId and messageId cannot be empty."
MARKER_INVALID = "roomId and messageId must be positive whole numbers."
KEY_TOO_LONG = f"The idempotency key must be at most {IDEMPOTENCY_KEY_MAX} characters."


class NewRoomBody(Body):
    """A room to create with the caller and the target customers."""

    roomName = Text(strip=True, max_length=ROOM_NAME_MAX, error_messages={MISSING: ROOM_EMPTY, TYPE: ROOM_EMPTY})
    targetCustomerIds = Ids(
        max_items=ROOM_PARTICIPANTS_MAX - 1,
        excluding="creator",
        error_messages={
            MISSING: ROOM_EMPTY,
            TYPE: "targetCustomerIds must be a list of customer ids.",
            "caller": "targetCustomerIds should not contain the creator's customerId.",
            "empty_list": "At least one target customer is required to create a room.",
            "too_many": f"A room can have at most {ROOM_PARTICIPANTS_MAX} participants.",
        },
    )


class NewMessageBody(Body):
    """A message to send to a room the caller takes part in."""

    roomId = Id(error_messages={MISSING: MESSAGE_EMPTY})
    content = Text(strip=False, max_length=CONTENT_MAX, error_messages={MISSING: MESSAGE_EMPTY})
    clientMessageId = Text(
        strip=True,
        max_length=IDEMPOTENCY_KEY_MAX,
        required=False,
        help_text="An idempotency key: a retried send with the same key returns the first message.",
        error_messages={"too_long": KEY_TOO_LONG},
    )


# The Idempotency-Key header, checked and described as the body's clientMessageId is.
IDEMPOTENCY_KEY = Text(
    strip=True, max_length=IDEMPOTENCY_KEY_MAX, required=False, error_messages={"too_long": KEY_TOO_LONG}
)


class ReadMarkerBody(Body):
    """How far the caller has read a room: the id of a message of that room."""

    roomId = Id(error_messages={MISSING: MARKER_EMPTY, TYPE: MARKER_INVALID})
    messageId = Id(error_messages={MISSING: MARKER_EMPTY, TYPE: MARKER_INVALID})


RoomCreatedAnswer = envelope("RoomCreatedAnswer", serializers.IntegerField(), "The room was created; data is its id.")


class SentMessage(serializers.Serializer):
    """The stored message: its id and the time it was stored."""

    messageId = serializers.IntegerField()
    sentAt = serializers.DateTimeField()


MessageSentAnswer = envelope(
    "MessageSentAnswer", SentMessage(), "The message was stored (or had been, under the same idempotency key)."
)


ReadMarkerAnswer = envelope(
    "ReadMarkerAnswer", Null(), "The read marker is at least as far as asked (it never moves back)."
)

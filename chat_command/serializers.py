"""The commands' bodies and answers, declared once: services.check_* parse the bodies with them,
and they are the OpenAPI schema's description of /command/*."""

from __future__ import annotations

import re

import regex
from rest_framework import serializers

from infrastructure.http.answers import Null, envelope
from infrastructure.http.bodies import MISSING, TYPE, Body, Id, Ids, Text
from infrastructure.http.errors import BadRequest

ROOM_NAME_MAX = 100
ROOM_PARTICIPANTS_MAX = 100
CONTENT_MAX = 4000
IDEMPOTENCY_KEY_MAX = 64

ROOM_EMPTY = "roomName and targetCustomerIds cannot be empty."
MESSAGE_EMPTY = "roomId and content cannot be empty."
MARKER_EMPTY = "roomId and messageId cannot be empty."
MARKER_INVALID = "roomId and messageId must be positive whole numbers."
KEY_TOO_LONG = f"The idempotency key must be at most {IDEMPOTENCY_KEY_MAX} characters."
EDIT_EMPTY = "content cannot be empty."
REACTIONS_MAX = 20  # distinct reactions a message may carry


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


MEMBERS_PER_CALL = 100
MEMBERS_EMPTY = "customerIds cannot be empty."
NAME_EMPTY = "roomName cannot be empty."


class NewMembersBody(Body):
    """Customers to add to a room the caller takes part in (those already in it are ignored)."""

    customerIds = Ids(
        max_items=MEMBERS_PER_CALL,
        error_messages={
            MISSING: MEMBERS_EMPTY,
            TYPE: "customerIds must be a list of customer ids.",
            "empty_list": MEMBERS_EMPTY,
            "too_many": f"At most {MEMBERS_PER_CALL} customers can be added at once.",
        },
    )


class RoomNameBody(Body):
    """The room's new name."""

    roomName = Text(strip=True, max_length=ROOM_NAME_MAX, error_messages={MISSING: NAME_EMPTY, TYPE: NAME_EMPTY})


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


class EditedMessageBody(Body):
    """The new text of a message the caller sent."""

    content = Text(strip=False, max_length=CONTENT_MAX, error_messages={MISSING: EDIT_EMPTY, TYPE: EDIT_EMPTY})


# A reaction is one emoji (one grapheme cluster holding an emoji character: a flag, a keycap,
# a skin tone or a ZWJ family are each one) or a short name such as :thumbs_up:.
_ONE_GRAPHEME = regex.compile(r"\X")
_EMOJI_CHARACTER = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20E3]")
_SHORT_NAME = re.compile(r":[a-z0-9_+-]{1,32}:")
# For the OpenAPI schema, which no pattern can tell "one emoji" to: the short names, and the main
# emoji blocks' single characters (every one of them a valid reaction); the API takes any emoji.
_EMOJI_BLOCKS = ((0x1F324, 0x1F393), (0x1F400, 0x1F4FD), (0x1F5FA, 0x1F64F), (0x1F680, 0x1F6C5), (0x1F947, 0x1F9FF))
EMOJI_PATTERN = "^(:[a-z0-9_+-]{1,32}:|[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _EMOJI_BLOCKS) + "])$"
EMOJI_INVALID = "emoji must be one emoji or a short name like :thumbs_up: (lower-case letters, digits, _ + -)."


def check_emoji(text: str) -> str:
    """The reaction named by a URL's path segment (already decoded), or a 400."""
    if _SHORT_NAME.fullmatch(text) or (_ONE_GRAPHEME.fullmatch(text) and _EMOJI_CHARACTER.search(text)):
        return text
    raise BadRequest(EMOJI_INVALID, code="invalid")


class ReadMarkerBody(Body):
    """How far the caller has read a room: the id of a message of that room."""

    roomId = Id(error_messages={MISSING: MARKER_EMPTY, TYPE: MARKER_INVALID})
    messageId = Id(error_messages={MISSING: MARKER_EMPTY, TYPE: MARKER_INVALID})


MembersAddedAnswer = envelope(
    "MembersAddedAnswer",
    serializers.ListField(child=serializers.IntegerField()),
    "The customers are in the room; data lists those who were not before (in the order given).",
)
MemberRemovedAnswer = envelope("MemberRemovedAnswer", Null(), "The customer is no longer in the room.")
RoomRenamedAnswer = envelope("RoomRenamedAnswer", Null(), "The room has this name (or already had).")
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


class EditedMessage(serializers.Serializer):
    """The edited message: its id and when it was last edited."""

    messageId = serializers.IntegerField()
    editedAt = serializers.DateTimeField(allow_null=True, help_text="Null when the text was already this.")


MessageEditedAnswer = envelope("MessageEditedAnswer", EditedMessage(), "The message now has this text.")
MessageDeletedAnswer = envelope(
    "MessageDeletedAnswer", Null(), "The message is a tombstone now (or already was): no text, no reactions."
)
ReactionAnswer = envelope("ReactionAnswer", Null(), "The caller's reaction is there (PUT) or not (DELETE).")

"""Reads of the source of truth that other apps need (membership is never read from a projection)."""

from __future__ import annotations

from typing import Any

from django.db import connection

from accounts.auth import refuse_if_ended
from accounts.tokens import ENDED_SQL, Principal, ended_params
from chat_command.models import Message, Room, RoomParticipant
from infrastructure.http.errors import InvalidSessionToken

BIGINT_MAX = 2**63 - 1
_NO_CURSOR = BIGINT_MAX  # above every message id


def is_participant(room_id: int, customer_id: int) -> bool:
    # A room id from a URL may be any size; beyond a bigint it names no room, and SQLite cannot
    # even compare it (PostgreSQL can).
    if room_id > BIGINT_MAX:
        return False
    return RoomParticipant.objects.filter(room_id=room_id, customer_id=customer_id).exists()


def participant_ids(room_id: int) -> list[int]:
    rows = RoomParticipant.objects.filter(room_id=room_id).order_by("position")
    return list(rows.values_list("customer_id", flat=True))


def room_ids_of(customer_id: int) -> list[int]:
    # Without the ORM: a customer may be in hundreds of rooms, and this runs on every room list.
    with connection.cursor() as cursor:
        cursor.execute("SELECT room_id FROM room_participants WHERE customer_id = %s", [customer_id])
        return [row[0] for row in cursor.fetchall()]


# The two hot reads check whether the caller's session ended in the query they need anyway
# (as the send statement does), instead of in a round trip of its own.


def readable_room_ids(me: Principal) -> list[int]:
    """The caller's rooms; refuses a session that logout or deactivation ended."""
    if connection.vendor != "postgresql":
        refuse_if_ended(me)
        return room_ids_of(me.customer_id)
    ended, room_ids = _one_row(
        f"SELECT {ENDED_SQL}, ARRAY(SELECT room_id FROM room_participants WHERE customer_id = %s)",
        [*ended_params(me), me.customer_id],
    )
    if ended:
        raise InvalidSessionToken()
    return list(room_ids)


def _one_row(sql: str, params: list[Any]) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None, "a SELECT without FROM returns one row"
    return tuple(row)


# --- Read-your-writes: what the read model shows when its projection has not caught up ------


def member_page_ids(me: Principal, room_id: int, before: int | None, size: int) -> list[int] | None:
    """The ids of a page of messages, newest first, or None when the caller is not in the
    room; refuses a session that ended. On PostgreSQL one round trip for all three."""
    if connection.vendor != "postgresql":
        refuse_if_ended(me)
        if not is_participant(room_id, me.customer_id):
            return None
        query = Message.objects.filter(room_id=room_id, message_id__lt=_NO_CURSOR if before is None else before)
        return list(query.order_by("-message_id").values_list("message_id", flat=True)[:size])
    ended, member, ids = _one_row(
        f"SELECT {ENDED_SQL},"
        " EXISTS (SELECT 1 FROM room_participants WHERE room_id = %s AND customer_id = %s),"
        " ARRAY(SELECT message_id FROM messages WHERE room_id = %s AND message_id < %s"
        " ORDER BY message_id DESC LIMIT %s)",
        [*ended_params(me), room_id, me.customer_id, room_id, _NO_CURSOR if before is None else before, size],
    )
    if ended:
        raise InvalidSessionToken()
    return list(ids) if member else None


def message_page(room_id: int, before: int | None, size: int) -> list[dict[str, Any]]:
    """A page straight from the source of truth, in the read model's document shape."""
    query = Message.objects.filter(room_id=room_id).select_related("sender")
    if before is not None:
        query = query.filter(message_id__lt=before)
    return [
        {
            "_id": m.message_id,
            "roomId": m.room_id,
            "senderId": m.sender_id,
            "senderFullName": m.sender.full_name,
            "content": m.content,
            "sentAt": m.sent_at,
        }
        for m in query.order_by("-message_id")[:size]
    ]


def room_documents(room_ids: list[int]) -> list[dict[str, Any]]:
    """Rooms straight from the source of truth, in the read model's view-document shape."""
    documents = []
    for room in Room.objects.filter(room_id__in=room_ids).prefetch_related("participants"):
        members = sorted(room.participants.all(), key=lambda p: p.position)
        last = Message.objects.filter(room=room).order_by("-message_id").first()
        document: dict[str, Any] = {
            "_id": room.room_id,
            "roomName": room.room_name,
            "participantIds": [m.customer_id for m in members],
            "createdAt": room.created_at,
            "updatedAt": max(room.created_at, last.sent_at) if last else room.created_at,
            "readUpTo": {str(m.customer_id): m.last_read_message_id or 0 for m in members},
        }
        if last is not None:
            document["lastMessage"] = {
                "messageId": last.message_id,
                "senderId": last.sender_id,
                "content": last.content,
                "sentAt": last.sent_at,
            }
        documents.append(document)
    return documents


def read_markers(room_id: int) -> dict[int, int]:
    rows = RoomParticipant.objects.filter(room_id=room_id, last_read_message_id__isnull=False)
    return {customer: int(marker or 0) for customer, marker in rows.values_list("customer_id", "last_read_message_id")}

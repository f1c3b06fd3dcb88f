"""Reads of the source of truth that other apps need (membership is never read from a projection)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce, Greatest

from accounts.auth import refuse_if_ended
from accounts.tokens import ENDED_SQL, Principal, ended_params
from chat_command.models import Message, Reaction, Room, RoomParticipant
from infrastructure.http.errors import InvalidSessionToken
from infrastructure.timeutil import iso

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


def member_page(me: Principal, room_id: int, before: int | None, size: int) -> list[tuple[int, int]] | None:
    """The (id, revision) of each message of a page, newest first, or None when the caller is
    not in the room; refuses a session that ended. On PostgreSQL one round trip for all three."""
    if connection.vendor != "postgresql":
        refuse_if_ended(me)
        if not is_participant(room_id, me.customer_id):
            return None
        query = Message.objects.filter(room_id=room_id, message_id__lt=_NO_CURSOR if before is None else before)
        return list(query.order_by("-message_id").values_list("message_id", "revision")[:size])
    ended, member, rows = _one_row(
        f"SELECT {ENDED_SQL},"
        " EXISTS (SELECT 1 FROM room_participants WHERE room_id = %s AND customer_id = %s),"
        " ARRAY(SELECT ARRAY[message_id, revision] FROM messages WHERE room_id = %s AND message_id < %s"
        " ORDER BY message_id DESC LIMIT %s)",
        [*ended_params(me), room_id, me.customer_id, room_id, _NO_CURSOR if before is None else before, size],
    )
    if ended:
        raise InvalidSessionToken()
    return [(int(i), int(r)) for i, r in rows] if member else None


def message_page(room_id: int, before: int | None, size: int) -> list[dict[str, Any]]:
    """A page straight from the source of truth, newest first, as message states."""
    query = Message.objects.filter(room_id=room_id).select_related("sender")
    if before is not None:
        query = query.filter(message_id__lt=before)
    return message_states(query.order_by("-message_id")[:size])


def message_states(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Each message (its sender selected with it) as it now is, in MessageUpdated's fields."""
    found = list(messages)
    reactions = reactions_of([m.message_id for m in found])
    return [message_state(m, reactions.get(m.message_id, [])) for m in found]


def message_state(message: Message, reactions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The message (its sender selected with it) as it now is, in MessageUpdated's fields
    (without `change`); its reactions are read unless given."""
    return {
        "roomId": message.room_id,
        "revision": message.revision,
        "messageId": message.message_id,
        "senderId": message.sender_id,
        "senderFullName": message.sender.full_name,
        "content": message.content,
        "sentAt": iso(message.sent_at),
        "editedAt": None if message.edited_at is None else iso(message.edited_at),
        "deleted": message.deleted_at is not None,
        "reactions": reactions_of([message.message_id]).get(message.message_id, []) if reactions is None else reactions,
        "type": message.kind,
        "system": message.system,
    }


def reactions_of(message_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each message's reactions, [{emoji, customerIds}], emoji and people in order of first use."""
    found: dict[int, dict[str, list[int]]] = {}
    rows = Reaction.objects.filter(message_id__in=message_ids).order_by("id")
    for message_id, emoji, customer_id in rows.values_list("message_id", "emoji", "customer_id"):
        found.setdefault(message_id, {}).setdefault(emoji, []).append(customer_id)
    return {m: [{"emoji": e, "customerIds": c} for e, c in kinds.items()] for m, kinds in found.items()}


def room_documents(room_ids: list[int]) -> list[dict[str, Any]]:
    """Rooms straight from the source of truth, in the read model's view-document shape, with
    the facts its unread counts come from (`lastSeq`, each participant's `readSeq`)."""
    documents = []
    for room in Room.objects.filter(room_id__in=room_ids):
        members = _members_with_read_seq(room.room_id)
        last = Message.objects.filter(room=room).order_by("-message_id").first()
        document: dict[str, Any] = {
            "_id": room.room_id,
            "roomName": room.room_name,
            "participantIds": [customer_id for customer_id, _, _ in members],
            "createdAt": room.created_at,
            "createdBy": room.created_by_id,
            "updatedAt": max(room.created_at, last.sent_at) if last else room.created_at,
            "readUpTo": {str(customer_id): marker or 0 for customer_id, marker, _ in members},
            "roomRev": room.revision,
        }
        if last is not None:
            document["lastMessage"] = {
                "messageId": last.message_id,
                "senderId": last.sender_id,
                "content": last.content,
                "sentAt": last.sent_at,
                "type": last.kind,
            }
            if last.seq:  # zero only for a message stored before seqs and not numbered since
                document["lastSeq"] = last.seq
                document["readSeq"] = {str(customer_id): int(seq) for customer_id, _, seq in members}
        documents.append(document)
    return documents


def _members_with_read_seq(room_id: int) -> list[tuple[int, int | None, int]]:
    """The room's participants in order: (id, read marker, read seq), the read seq being the
    highest seq among their marker's message and their own messages (a new member's marker is
    the system message that added them)."""
    marker = Message.objects.filter(message_id=OuterRef("last_read_message_id")).values("seq")[:1]
    own = (
        Message.objects.filter(room_id=room_id, sender_id=OuterRef("customer_id"))
        .order_by("-message_id")
        .values("seq")[:1]
    )
    rows = (
        RoomParticipant.objects.filter(room_id=room_id)
        .annotate(read_seq=Greatest(Coalesce(Subquery(marker), 0), Coalesce(Subquery(own), 0)))
        .order_by("position")
    )
    return list(rows.values_list("customer_id", "last_read_message_id", "read_seq"))


def read_markers(room_id: int) -> dict[int, int]:
    rows = RoomParticipant.objects.filter(room_id=room_id, last_read_message_id__isnull=False)
    return {customer: int(marker or 0) for customer, marker in rows.values_list("customer_id", "last_read_message_id")}

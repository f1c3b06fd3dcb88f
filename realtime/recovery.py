"""Messages a reconnecting client missed, from the read store, checked against the truth."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from chat_command.api import message_states
from chat_command.models import Message, RoomParticipant
from chat_query.selectors import message_json, state_json
from chat_query.store import active_store

MAX_RECOVERED = 500


def messages_after(room_id: int, since: int, reader_id: int) -> list[dict[str, Any]] | None:
    """Messages of the room after `since` that PostgreSQL holds now, oldest first (at most the
    newest 500), each in its current state; None if `reader_id` is not in the room now.
    Whatever commits later reaches the subscription live, so nothing newer is returned: a
    newer message returned here would make the subscription drop, as a repeat, an older one
    that arrives live after it.

    Membership and messages are read in one snapshot: a reader removed meanwhile is either
    refused or given only messages committed before the removal (sends and removals take the
    room's lock, so a message committed after the removal is visible only with it).

    The read store answers when it holds every one of them at its current revision; when it
    lacks one or holds an older state (not projected yet), PostgreSQL answers. Comparing counts
    is not enough: in the middle of a batch the store can hold a newer message while it still
    lacks an older one.
    """
    # Inside a transaction already (a test's), that transaction's snapshot rules; SQLite's
    # transactions read one snapshot anyway.
    own_snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if own_snapshot:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if not RoomParticipant.objects.filter(room_id=room_id, customer_id=reader_id).exists():
            return None
        return _missed(room_id, since)


def _missed(room_id: int, since: int) -> list[dict[str, Any]]:
    truth = Message.objects.filter(room_id=room_id, message_id__gt=since).order_by("-message_id")
    expected = dict(truth.values_list("message_id", "revision")[:MAX_RECOVERED])
    if not expected:
        return []
    window = {"roomId": room_id, "_id": {"$gt": since, "$lte": max(expected)}}
    documents = list(active_store().messages.find(window).sort("_id", -1).limit(MAX_RECOVERED))
    held = {d["_id"]: d.get("rev", 0) for d in documents}
    if any(held.get(i) != r for i, r in expected.items()):
        found = truth.filter(message_id__in=list(expected)).select_related("sender")
        return [state_json(s) for s in reversed(message_states(found))]
    return [message_json(d) for d in reversed(documents)]

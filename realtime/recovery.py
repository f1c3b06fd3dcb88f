"""Messages a reconnecting client missed, from the read store, checked against the truth."""

from __future__ import annotations

from typing import Any

from chat_command.models import Message
from chat_query.selectors import message_json
from chat_query.store import active_store
from infrastructure.timeutil import iso

MAX_RECOVERED = 500


def messages_after(room_id: int, since: int) -> list[dict[str, Any]]:
    """Messages of the room after `since` that PostgreSQL holds now, oldest first (at most the
    newest 500). Whatever commits later reaches the subscription live, so nothing newer is
    returned: a newer message returned here would make the subscription drop, as a repeat,
    an older one that arrives live after it.

    The read store answers when it holds every one of them; when it lacks one (not projected
    yet), PostgreSQL answers. Comparing counts is not enough: in the middle of a batch the
    store can hold a newer message while it still lacks an older one.
    """
    truth = Message.objects.filter(room_id=room_id, message_id__gt=since).order_by("-message_id")
    expected = set(truth.values_list("message_id", flat=True)[:MAX_RECOVERED])
    if not expected:
        return []
    window = {"roomId": room_id, "_id": {"$gt": since, "$lte": max(expected)}}
    documents = list(active_store().messages.find(window).sort("_id", -1).limit(MAX_RECOVERED))
    if not expected <= {d["_id"] for d in documents}:
        return [
            {
                "messageId": m.message_id,
                "roomId": m.room_id,
                "senderId": m.sender_id,
                "senderFullName": m.sender.full_name,
                "content": m.content,
                "sentAt": iso(m.sent_at),
            }
            for m in reversed(truth.filter(message_id__in=expected).select_related("sender"))
        ]
    return [message_json(d) for d in reversed(documents)]

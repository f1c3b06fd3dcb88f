"""Messages a reconnecting client missed, from the read store, checked against the truth."""

from __future__ import annotations

from typing import Any

from chat_command.models import Message
from chat_query.selectors import message_json
from chat_query.store import active_store
from chatproject.timeutil import iso

MAX_RECOVERED = 500


def messages_after(room_id: int, since: int) -> list[dict[str, Any]]:
    """Messages of the room after `since`, oldest first (at most the newest 500).

    The read store answers unless it has fewer than PostgreSQL (not projected yet); then
    PostgreSQL does, so nothing committed before the subscription is missing.
    """
    truth = Message.objects.filter(room_id=room_id, message_id__gt=since)
    expected = truth.count()
    if expected == 0:
        return []
    documents = list(
        active_store().messages.find({"roomId": room_id, "_id": {"$gt": since}}).sort("_id", -1).limit(MAX_RECOVERED)
    )
    if len(documents) < min(expected, MAX_RECOVERED):
        return [
            {
                "messageId": m.message_id,
                "roomId": m.room_id,
                "senderId": m.sender_id,
                "senderFullName": m.sender.full_name,
                "content": m.content,
                "sentAt": iso(m.sent_at),
            }
            for m in reversed(truth.select_related("sender").order_by("-message_id")[:MAX_RECOVERED])
        ]
    return [message_json(d) for d in reversed(documents)]

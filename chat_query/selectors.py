"""Reads of the read model, with the source of truth as a backstop for read-your-writes.

A room its creator just created, or a message its sender just sent, may not be projected
yet. Each read checks the source of truth for what the projection has not caught up with
(one indexed query) and answers from it in that case, so a write is readable at once.
"""

from __future__ import annotations

from typing import Any

from chat_command import selectors as truth
from chat_query.projection import is_complete, unread_status, view_json
from chat_query.store import active_store
from chatproject.timeutil import iso
from realtime import presence

PAGE_SIZE = 20


def room_list_for(customer_id: int) -> list[dict[str, Any]]:
    """The caller's rooms, newest activity first."""
    store = active_store()
    views = [v for v in store.views.find({"participantIds": customer_id}).sort("updatedAt", -1) if is_complete(v)]
    known = {v["_id"] for v in views}
    missing = [r for r in truth.room_ids_of(customer_id) if r not in known]
    if missing:
        for document in truth.room_documents(missing):
            document["unreadStatus"] = unread_status(document)
            views.append(document)
        views.sort(key=lambda v: v["updatedAt"], reverse=True)
    return [view_json(v) for v in views]


def message_page(room_id: int, before: int | None = None) -> list[dict[str, Any]]:
    """Up to 20 messages, newest first; `before` is an exclusive messageId cursor."""
    query: dict[str, Any] = {"roomId": room_id}
    if before is not None:
        query["_id"] = {"$lt": before}
    documents = list(active_store().messages.find(query).sort("_id", -1).limit(PAGE_SIZE))
    newest = truth.newest_message_id(room_id, before)
    if newest is not None and (not documents or documents[0]["_id"] < newest):
        documents = truth.message_page(room_id, before, PAGE_SIZE)
    return [message_json(d) for d in documents]


def message_json(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": document["_id"],
        "roomId": document["roomId"],
        "senderId": document["senderId"],
        "senderFullName": document["senderFullName"],
        "content": document["content"],
        "sentAt": iso(document["sentAt"]),
    }


def online_statuses(room_id: int) -> list[dict[str, Any]]:
    participants = truth.participant_ids(room_id)
    online = presence.online_ids(participants)
    return [{"customerId": p, "online": p in online} for p in participants]


def read_markers(room_id: int) -> list[dict[str, Any]]:
    """Every participant's marker; a marker the projection has not caught up with comes from the truth."""
    projected = {m["customerId"]: m for m in active_store().markers.find({"roomId": room_id})}
    markers = []
    for customer_id, last_read in sorted(truth.read_markers(room_id).items()):
        document = projected.get(customer_id)
        markers.append(
            {
                "id": str(document["_id"]) if document else None,
                "roomId": room_id,
                "customerId": customer_id,
                "lastReadMessageId": max(last_read, document["lastReadMessageId"] if document else 0),
            }
        )
    return markers

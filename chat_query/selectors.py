"""Reads of the read model, with the source of truth as a backstop for read-your-writes.

A room its creator just created, or a message its sender just sent, may not be projected
yet. Each read asks the source of truth which rooms or messages it must show (one indexed
query) and answers from it for what the projection has not caught up with, so a write is
readable at once.

The room list and message pages come back rendered (a JSON text per room or message), from
the read cache (`chat_query.cache`) where it has them and from the read store otherwise.
"""

from __future__ import annotations

from typing import Any

from accounts.tokens import Principal
from chat_command import selectors as truth
from chat_command.events import USER
from chat_command.services import not_a_participant
from chat_query import cache
from chat_query.projection import cache_entry, is_complete, unread_fields
from chat_query.store import ReadStore, active_store
from infrastructure.http.responses import render
from infrastructure.timeutil import iso

PAGE_SIZE = 20
# Fewer missing views than this are read one by one (FerretDB serves an `_id` from its index);
# more, with the customer's whole room list.
_LOOKUPS = 20


def room_list_for(me: Principal) -> list[str]:
    """The caller's rooms, newest activity first.

    From the caller's cached list when it holds exactly the rooms PostgreSQL names; else
    assembled from the cached views, the read store for views not cached, and PostgreSQL for
    rooms not projected yet.
    """
    store = active_store()
    customer_id = me.customer_id
    room_ids = truth.readable_room_ids(me)
    if not room_ids:
        return []
    rooms = ",".join(str(r) for r in sorted(room_ids))
    listing = cache.room_list(store.generation, customer_id)
    if listing.body is not None and listing.rooms == rooms:
        return [listing.body]
    stored = cache.views(store.generation, room_ids)
    missing = [r for r in room_ids if r not in stored]
    projected = {r: cache_entry(v) for r, v in _projected_views(store, customer_id, missing).items()}
    cache.put_views(store.generation, projected.items(), changed=False)
    stored.update((r, e.stored) for r, e in projected.items())
    behind = [r for r in missing if r not in projected]
    for document in truth.room_documents(behind):
        document.update(unread_fields(document))
        stored[document["_id"]] = cache_entry(document).stored
    items = [cache.json_of(s) for s in sorted(stored.values(), reverse=True)]
    if not behind:  # a list with a room from PostgreSQL would not learn when it is projected
        cache.put_room_list(listing, rooms, ",".join(items))
    return items


def _projected_views(store: ReadStore, customer_id: int, room_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The complete views of these rooms in the read store."""
    if not room_ids:
        return {}
    if len(room_ids) < _LOOKUPS:
        found = store.find_by_ids(store.views, room_ids)
    else:
        wanted = set(room_ids)
        found = [v for v in store.views.find({"participantIds": customer_id}) if v["_id"] in wanted]
    return {v["_id"]: v for v in found if is_complete(v)}


def message_page(me: Principal, room_id: int, before: int | None = None) -> list[str]:
    """Up to 20 messages, newest first; `before` is an exclusive messageId cursor.
    Refuses a session that ended, and a customer who is not in the room.

    PostgreSQL names the page's messages and their revisions; the read store answers when it
    holds each of them at that revision, PostgreSQL otherwise (an edit not projected yet).
    """
    page = truth.member_page(me, room_id, before, PAGE_SIZE)
    if page is None:
        raise not_a_participant(me.customer_id, room_id)
    if not page:
        return []
    store = active_store()
    cached = cache.page(store.generation, room_id, page)
    if cached is not None:
        return cached
    query: dict[str, Any] = {"roomId": room_id, "_id": {"$lte": page[0][0]}}
    documents = list(store.messages.find(query).sort("_id", -1).limit(PAGE_SIZE))
    if [(d["_id"], d.get("rev", 0)) for d in documents] == page:
        rendered = [render(message_json(d)) for d in documents]
        cache.put_page(store.generation, room_id, page, rendered)
        return rendered
    return [render(state_json(s)) for s in truth.message_page(room_id, before, PAGE_SIZE)]


def message_json(document: dict[str, Any]) -> dict[str, Any]:
    """A stored message as clients see it (a message stored before edits existed is unedited)."""
    edited = document.get("editedAt")
    return {
        "messageId": document["_id"],
        "roomId": document["roomId"],
        "senderId": document["senderId"],
        "senderFullName": document["senderFullName"],
        "content": document["content"],
        "sentAt": iso(document["sentAt"]),
        "editedAt": None if edited is None else iso(edited),
        "deleted": bool(document.get("deleted", False)),
        "reactions": list(document.get("reactions") or []),
        "type": document.get("type", USER),
        "system": document.get("system"),
    }


# A message as clients see it: the reference's fields, then what edits, deletes and reactions
# added, then what membership added (a system message's kind and facts).
MESSAGE_FIELDS = (
    *("messageId", "roomId", "senderId", "senderFullName", "content", "sentAt"),
    *("editedAt", "deleted", "reactions"),
    *("type", "system"),
)


def state_json(state: dict[str, Any]) -> dict[str, Any]:
    """A message state (MessageUpdated's fields) as clients see the message."""
    return {name: state[name] for name in MESSAGE_FIELDS}


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

"""The projection rules: how command events become the read model, in any order, any number of times.

A room view holds facts that merge without regard to order: the room's name, participants and
creation time in the state of its highest revision (`roomRev`: RoomCreated is revision 0, each
RoomChanged carries the whole room at its revision), the last message (the one with the
highest messageId, in the state of its highest revision), each participant's read-up-to
marker, the highest seq of any message (`lastSeq`) and each customer's read position
(`readSeq`: the highest seq among their read markers, their own messages and the system
message that added them), all of which only grow. A message likewise holds the state of the
highest revision seen: MessageSent is revision 0, and each MessageUpdated carries the whole
message at its revision. Unread counts and flags are derived from those facts, so a read marker
that arrives before its message, or a message or a change of membership before its room, ends
in the same state:

    unreadCount(p) = min(999, lastSeq - readSeq(p)) for each participant p
    unreadStatus(p) = unreadCount(p) > 0

A view from before messages had seqs (no `lastSeq`) answers with the older rule until a
rebuild (docs/event-pipeline.md): unread(p) = last message exists, p did not send it, and p has
not read up to it, counted as 1.

`apply` merges a batch into MongoDB with conditional, field-level updates, then rewrites the
derived counts and flags guarded by the view's revision, and returns the events to publish.
"""

from __future__ import annotations

import functools
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chat_command.events import (
    ADDED,
    LEFT,
    REMOVED,
    SYSTEM,
    USER,
    MessageSent,
    MessageUpdated,
    ReadMarkerUpdated,
    RoomChanged,
    RoomCreated,
)
from chat_query import cache
from chat_query.events import ReadStatusUpdated, RoomRemoved, RoomUpdated
from chat_query.store import ReadStore, Update
from infrastructure.http.responses import render
from infrastructure.messaging.events import Event
from infrastructure.timeutil import iso, parse_iso

MAX_CAS_ROUNDS = 10
# Unread counts are exact up to this, then this.
MAX_UNREAD = 999


@dataclass
class RoomFacts:
    """What one batch says about one room."""

    # The room as the highest revision this batch saw states it.
    room: RoomCreated | RoomChanged | None = None
    # Customers a removal or a departure in this batch named.
    removed: set[int] = field(default_factory=set)
    last_message: MessageSent | None = None
    read_up_to: dict[int, int] = field(default_factory=dict)
    # The newest state of each message of the room this batch updated.
    updated: dict[int, MessageUpdated] = field(default_factory=dict)
    # The lowest and highest seq of the batch's messages (0: none, or events from before seqs).
    first_seq: int = 0
    last_seq: int = 0
    # Each customer's read position as this batch moves it (see `read`).
    read_seq: dict[int, int] = field(default_factory=dict)

    def read(self, customer_id: int, seq: int) -> None:
        """The customer has read up to the message `seq` (a marker, a send, being added)."""
        if seq > self.read_seq.get(customer_id, 0):
            self.read_seq[customer_id] = seq

    def sent(self, event: MessageSent) -> None:
        """A message moves the room's last seq and its sender's read position; the system
        message that adds people is where the added start reading."""
        seq = event.seq
        if not seq:
            return  # recorded before messages had seqs
        # Comparisons, not min/max calls: a rebuild runs this for every message of the log.
        if seq > self.last_seq:
            self.last_seq = seq
        if seq < self.first_seq or not self.first_seq:
            self.first_seq = seq
        if seq > self.read_seq.get(event.senderId, 0):
            self.read_seq[event.senderId] = seq
        if event.type == SYSTEM and (event.system or {}).get("action") == ADDED:
            for customer_id in (event.system or {}).get("customerIds", []):
                self.read(int(customer_id), event.seq)

    def last_summary(self) -> dict[str, Any] | None:
        """The last message in short, in the newest state this batch knows of it."""
        if self.last_message is None:
            return None
        state = self.updated.get(self.last_message.messageId)
        return last_message_summary(self.last_message if state is None else state)


@dataclass
class Batch:
    rooms: dict[int, RoomFacts] = field(default_factory=lambda: defaultdict(RoomFacts))
    messages: dict[int, MessageSent] = field(default_factory=dict)
    updates: dict[int, MessageUpdated] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        facts = self.rooms[event.roomId]
        if isinstance(event, RoomCreated | RoomChanged):
            if facts.room is None or event.revision > facts.room.revision:
                facts.room = event
            if isinstance(event, RoomChanged) and event.change in (REMOVED, LEFT):
                facts.removed.update(event.customerIds)
        elif isinstance(event, MessageSent):
            self.messages[event.messageId] = event
            if facts.last_message is None or event.messageId > facts.last_message.messageId:
                facts.last_message = event
            facts.sent(event)
        elif isinstance(event, MessageUpdated):
            known = self.updates.get(event.messageId)
            if known is None or event.revision > known.revision:
                self.updates[event.messageId] = facts.updated[event.messageId] = event
        elif isinstance(event, ReadMarkerUpdated):
            current = facts.read_up_to.get(event.customerId, 0)
            facts.read_up_to[event.customerId] = max(current, event.lastReadMessageId)
            facts.read(event.customerId, event.seq)
        else:
            raise TypeError(f"the projector does not handle {event.TYPE}")


def room_state(room: RoomCreated | RoomChanged) -> dict[str, Any]:
    """The view's fields that follow the room's highest revision."""
    return {
        "roomName": room.roomName,
        "participantIds": [p["id"] for p in room.participants],
        "createdAt": parse_iso(room.createdAt),
        "createdBy": room.createdBy,
        "roomRev": room.revision,
    }


def unread_counts(view: dict[str, Any]) -> dict[str, int]:
    """Each participant's unread messages (by id, as a string), up to MAX_UNREAD."""
    if "lastSeq" not in view:
        # A room without messages, or a view from before seqs: the older rule, as 0 or 1.
        return {p: int(unread) for p, unread in _unread_by_last_message(view).items()}
    last, read = view["lastSeq"], view.get("readSeq") or {}
    return {str(p): min(MAX_UNREAD, max(0, last - read.get(str(p), 0))) for p in view.get("participantIds", [])}


def unread_status(view: dict[str, Any]) -> dict[str, bool]:
    """Whether each participant (by id, as a string) has unread messages."""
    return {p: n > 0 for p, n in unread_counts(view).items()}


def _unread_by_last_message(view: dict[str, Any]) -> dict[str, bool]:
    last = view.get("lastMessage")
    read_up_to = view.get("readUpTo", {})
    return {
        str(p): last is not None and last["senderId"] != p and read_up_to.get(str(p), 0) < last["messageId"]
        for p in view.get("participantIds", [])
    }


def unread_fields(view: dict[str, Any]) -> dict[str, Any]:
    """The view's derived fields as its facts make them."""
    counts = unread_counts(view)
    return {"unreadStatus": {p: n > 0 for p, n in counts.items()}, "unreadCount": counts}


def keywise_changes(name: str, old: Any, new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The operators that turn the document field `name` from `old` into `new`, key by key.

    Not one `$set` of the whole document: FerretDB 1.x compares a document it is to set with
    the stored one by position, not by key, and takes {"1": true, "2": true} -> {"1": true,
    "4": true} for no change (docs/decisions/0008-ferretdb-in-tests.md).
    """
    if not isinstance(old, dict) or not old:
        return {"$set": {name: new}} if old != new else {}
    sets = {f"{name}.{k}": v for k, v in new.items() if k not in old or old[k] != v}
    unsets = {f"{name}.{k}": "" for k in old if k not in new}
    return {k: v for k, v in (("$set", sets), ("$unset", unsets)) if v}


def _merged_operators(parts: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for operator, fields in part.items():
            merged.setdefault(operator, {}).update(fields)
    return merged


def message_document(event: MessageSent | MessageUpdated) -> dict[str, Any]:
    """A message as the read store holds it: MessageSent is its state at revision 0."""
    document = {
        "_id": event.messageId,
        "roomId": event.roomId,
        "senderId": event.senderId,
        "senderFullName": event.senderFullName,
        "content": event.content,
        "sentAt": parse_iso(event.sentAt),
        "editedAt": None,
        "deleted": False,
        "reactions": [],
        "rev": event.revision,
    }
    if event.type != USER:  # a user's message is stored as before kinds existed
        document.update(type=event.type, system=event.system)
    if isinstance(event, MessageUpdated):
        edited = None if event.editedAt is None else parse_iso(event.editedAt)
        document.update(editedAt=edited, deleted=event.deleted, reactions=event.reactions)
    return document


def _older_than(field: str, revision: int) -> dict[str, Any]:
    """A condition: the document's revision `field` is below `revision` (missing counts as 0)."""
    return {"$or": [{field: {"$lt": revision}}, {field: {"$exists": False}}]}


def write_message_updates(store: ReadStore, updates: Iterable[MessageUpdated]) -> None:
    """Each message's newest state, written where the stored one is older or missing.

    Usually every message is there already: one conditional update each. When fewer matched,
    some are missing (or newer): those are inserted, not upserted (an upsert whose condition
    is false would collide with the existing document, and FerretDB leaves empty lists and
    nulls out of `$setOnInsert`), and the ones another writer inserted meanwhile are updated
    again.
    """
    documents = {u.messageId: message_document(u) for u in updates}
    if not documents or _update_where_older(store, list(documents.values())) == len(documents):
        return
    there = store.insert_new(store.messages, list(documents.values()))
    _update_where_older(store, [documents[i] for i in there])


def _update_where_older(store: ReadStore, documents: list[dict[str, Any]]) -> int:
    older = [Update({"_id": d["_id"], **_older_than("rev", d["rev"])}, {"$set": _without_id(d)}) for d in documents]
    return store.update_many_ops(store.messages, older)


def _without_id(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "_id"}


def last_message_summary(event: MessageSent | MessageUpdated) -> dict[str, Any]:
    """A room's last message in short; `rev` (its revision) is the read store's, never shown."""
    return {
        "messageId": event.messageId,
        "senderId": event.senderId,
        "content": event.content,
        "sentAt": parse_iso(event.sentAt),
        "type": event.type,
        "rev": event.revision,
    }


def _summary_of(document: dict[str, Any]) -> dict[str, Any]:
    """A stored message in short, as a room's last message."""
    return {
        "messageId": document["_id"],
        "senderId": document["senderId"],
        "content": document["content"],
        "sentAt": document["sentAt"],
        "type": document.get("type", USER),
        "rev": document.get("rev", 0),
    }


def _last_message_follows(room_id: int, summary: dict[str, Any]) -> Update:
    """The room's last message takes this state, if it is that message in an older state."""
    return Update(
        {
            "_id": room_id,
            "lastMessage.messageId": summary["messageId"],
            **_older_than("lastMessage.rev", summary["rev"]),
        },
        {"$set": {"lastMessage": summary}, "$inc": {"rev": 1}},
    )


def _view_updates(room_id: int, facts: RoomFacts) -> list[Update]:
    """Conditional updates that only ever move a view forward; a false condition is a no-op.

    The view is created first if missing, so the conditional updates never need to upsert
    (an upsert whose condition is false would collide with the existing document).
    """
    updates = [Update({"_id": room_id}, {"$setOnInsert": {"rev": 0}}, upsert=True)]
    if facts.room is not None:
        # RoomCreated sets the room only where no revision did; a RoomChanged over any older one.
        newer = (
            {"roomName": {"$exists": False}}
            if facts.room.revision == 0
            else _older_than("roomRev", facts.room.revision)
        )
        state = room_state(facts.room)
        updates.append(
            Update(
                {"_id": room_id, **newer},
                {"$set": state, "$max": {"updatedAt": state["createdAt"]}, "$inc": {"rev": 1}},
            )
        )
    if facts.last_message is not None:
        message = facts.last_message
        updates.append(
            Update(
                {
                    "_id": room_id,
                    "$or": [{"lastMessage.messageId": {"$lt": message.messageId}}, {"lastMessage": {"$exists": False}}],
                },
                {
                    "$set": {"lastMessage": facts.last_summary()},
                    "$max": {"updatedAt": parse_iso(message.sentAt)},
                    "$inc": {"rev": 1},
                },
            )
        )
    updates += [_last_message_follows(room_id, last_message_summary(state)) for state in facts.updated.values()]
    reads = _read_maxes(facts)
    if reads:
        updates.append(Update({"_id": room_id}, {"$max": reads, "$inc": {"rev": 1}}))
    return updates


def _read_maxes(facts: RoomFacts) -> dict[str, int]:
    """The facts that only grow, as `$max` operands: markers, the last seq, read positions."""
    maxes = {f"readUpTo.{c}": m for c, m in facts.read_up_to.items()}
    if facts.last_seq:
        maxes["lastSeq"] = facts.last_seq
    maxes.update((f"readSeq.{c}", s) for c, s in facts.read_seq.items())
    return maxes


def apply(store: ReadStore, events: list[Event]) -> list[Event]:
    """Merge events into the store; return what to publish. Re-applying changes nothing."""
    return apply_batch(store, events)[0]


def apply_batch(
    store: ReadStore, events: list[Event], known: ViewMemo | None = None
) -> tuple[list[Event], dict[int, dict[str, Any]]]:
    """`apply`, also returning the views of the rooms the batch touched, as they now are.

    `known` remembers views as the last batches left them, so a writer that is usually the
    only one need not read them back; every update is still guarded by the view's revision.
    """
    known = known if known is not None else ViewMemo(0)
    batch = Batch()
    for event in events:
        batch.add(event)
    markers = [
        Update({"roomId": room_id, "customerId": c}, {"$max": {"lastReadMessageId": m}}, upsert=True)
        for room_id, facts in batch.rooms.items()
        for c, m in facts.read_up_to.items()
    ]
    # Messages, markers and views are independent collections: written at the same time.
    already_stored: set[int] = set()
    views = store.alongside(
        functools.partial(_merge_into_views, store, batch, known),
        functools.partial(_write_messages, store, batch, already_stored),
        functools.partial(store.update_many_ops, store.markers, markers),
    )
    rest = {r: f for r, f in batch.rooms.items() if r not in views}
    store.update_many_ops(store.views, [u for r, f in rest.items() for u in _view_updates(r, f)], ordered=True)
    views.update(_settle_unread(store, list(rest)))
    views.update(_last_messages_caught_up(store, batch, already_stored, views))
    known.remember(views)
    return _announcements(batch, views), views


def _write_messages(store: ReadStore, batch: Batch, already_stored: set[int]) -> None:
    """Insert the batch's new messages in the newest state it knows; write updated ones where
    the stored state is older. Adds to `already_stored` the new ones the store already had."""
    fresh = [message_document(batch.updates.get(m.messageId, m)) for m in batch.messages.values()]
    already_stored.update(store.insert_new(store.messages, fresh))
    updates = [u for u in batch.updates.values() if u.messageId not in batch.messages or u.messageId in already_stored]
    write_message_updates(store, updates)


def _last_messages_caught_up(
    store: ReadStore, batch: Batch, already_stored: set[int], views: dict[int, dict[str, Any]]
) -> dict[int, dict[str, Any]]:
    """Views whose new last message the store already held, updated (by an earlier batch) past
    the state this batch's MessageSent has: the last message takes the stored state."""
    behind = {
        facts.last_message.messageId: room_id
        for room_id, facts in batch.rooms.items()
        if facts.last_message is not None
        and facts.last_message.messageId in already_stored
        and (views.get(room_id) or {}).get("lastMessage", {}).get("messageId") == facts.last_message.messageId
    }
    if not behind:
        return {}
    stored = [d for d in store.find_by_ids(store.messages, list(behind)) if d.get("rev", 0) > 0]
    if not stored:
        return {}
    follows = [_last_message_follows(behind[d["_id"]], _summary_of(d)) for d in stored]
    store.update_many_ops(store.views, follows, ordered=True)
    return {v["_id"]: v for v in store.find_by_ids(store.views, [behind[d["_id"]] for d in stored])}


class ViewMemo:
    """Views as this process last wrote or read them, the most recently used `size` rooms."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._views: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def get(self, room_id: int) -> dict[str, Any] | None:
        return self._views.get(room_id)

    def remember(self, views: dict[int, dict[str, Any]]) -> None:
        for room_id, view in views.items():
            self._views[room_id] = view
            self._views.move_to_end(room_id)
        while len(self._views) > self.size:
            self._views.popitem(last=False)

    def forget(self) -> None:
        self._views.clear()


def _merge_into_views(store: ReadStore, batch: Batch, known: ViewMemo) -> dict[int, dict[str, Any]]:
    """The common case in one command per room: insert the views of rooms created here; read
    the complete views, merge the batch's facts in memory, write only the fields that move,
    each update guarded by the revision it read.

    Returns the views it settled; the rest (views missing or incomplete, or moved by another
    writer meanwhile) take the general path of conditional updates.
    """
    merged: dict[int, dict[str, Any]] = {}
    updates: list[Update] = []
    unguarded: dict[int, int] = {}  # remembered views the batch leaves as they are: their revisions
    remembered = {r: v for r in batch.rooms if (v := known.get(r)) is not None}
    found = [*remembered.values(), *store.find_by_ids(store.views, [r for r in batch.rooms if r not in remembered])]
    # A room created in this batch and not seen before: its view is inserted whole.
    seen = {v["_id"] for v in found}
    created = [view_document(r, f) for r, f in batch.rooms.items() if f.room is not None and r not in seen]
    refused = store.insert_new(store.views, created)
    merged.update((v["_id"], v) for v in created if v["_id"] not in refused)
    for view in found:
        if not is_complete(view) or not isinstance(view.get("rev"), int):
            continue
        after, changes = _merged(view, batch.rooms[view["_id"]])
        merged[view["_id"]] = after
        if changes:
            updates.append(Update({"_id": view["_id"], "rev": view["rev"]}, {**changes, "$inc": {"rev": 1}}))
        elif view["_id"] in remembered:
            unguarded[view["_id"]] = view["rev"]
    if updates and store.update_many_ops(store.views, updates) != len(updates):
        known.forget()  # another writer moved some of them
        return {}  # which ones lost is unknown; the general path is safe for all of them
    # "Nothing to write" was decided on a remembered view: it holds only if nobody moved it since.
    if unguarded and any(v["rev"] != unguarded[v["_id"]] for v in store.find_by_ids(store.views, list(unguarded))):
        known.forget()
        return {}
    return merged


def _merged(view: dict[str, Any], facts: RoomFacts) -> tuple[dict[str, Any], dict[str, Any]]:
    """A complete view with the facts applied, and the update operators that do it."""
    after = {**view, "readUpTo": dict(view.get("readUpTo") or {}), "readSeq": dict(view.get("readSeq") or {})}
    sets: dict[str, Any] = {}
    maxes: dict[str, Any] = {}
    if facts.room is not None and facts.room.revision > view.get("roomRev", 0):
        sets.update(room_state(facts.room))
    last = view.get("lastMessage")
    if facts.last_message is not None and (last is None or last["messageId"] < facts.last_message.messageId):
        sets["lastMessage"] = facts.last_summary()
        sent = parse_iso(facts.last_message.sentAt)
        if sent > view["updatedAt"]:
            maxes["updatedAt"] = sent
    elif last is not None and (state := facts.updated.get(last["messageId"])) and state.revision > last.get("rev", 0):
        sets["lastMessage"] = last_message_summary(state)
    reads = _legacy_read_seq(view, facts)
    for name, value in _read_maxes(facts).items():
        reads[name] = max(value, reads.get(name, 0))
    for name, value in reads.items():
        group, _, key = name.partition(".")
        held = after[group].get(key, 0) if key else after.get(group, 0)
        if held < value:
            maxes[name] = value
            if key:
                after[group][key] = value
    after.update(sets)
    after.update((name, value) for name, value in maxes.items() if "." not in name)
    derived = unread_fields(after)
    after.update(derived)
    moves = [keywise_changes(name, view.get(name), value) for name, value in derived.items()]
    changes = {k: v for k, v in _merged_operators([{"$set": sets, "$max": maxes}, *moves]).items() if v}
    if changes:
        after["rev"] = view["rev"] + 1
    return after, changes


def _legacy_read_seq(view: dict[str, Any], facts: RoomFacts) -> dict[str, int]:
    """For a view from before seqs meeting its first seq'd messages: where each participant
    had read to, as far as the older rule knew (all of it, or all but one message).

    The room's topic delivers its messages in order, so the batch's first seq follows the
    last message the view holds. A rebuild makes the counts exact (docs/event-pipeline.md).
    """
    if "lastSeq" in view or view.get("lastMessage") is None or not facts.first_seq:
        return {}
    base = facts.first_seq - 1
    unread = _unread_by_last_message(view)
    return {
        f"readSeq.{p}": max(0, base - 1) if unread.get(str(p)) else base
        for p in view.get("participantIds", [])
        if str(p) not in (view.get("readSeq") or {})
    }


def _settle_unread(store: ReadStore, room_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Rewrite derived counts and flags where they differ, guarded by the revision, until all agree."""
    views: dict[int, dict[str, Any]] = {}
    pending = room_ids
    for _ in range(MAX_CAS_ROUNDS):
        stale = []
        for view in store.find_by_ids(store.views, pending):
            derived = unread_fields(view)
            views[view["_id"]] = view
            if all(view.get(name) == value for name, value in derived.items()):
                continue
            moves = _merged_operators([keywise_changes(name, view.get(name), value) for name, value in derived.items()])
            view.update(derived, rev=view.get("rev", 0) + 1)
            stale.append((view, moves))
        if not stale:
            return views
        updates = [Update({"_id": v["_id"], "rev": v["rev"] - 1}, {**m, "$inc": {"rev": 1}}) for v, m in stale]
        if store.update_many_ops(store.views, updates) == len(updates):
            return views
        pending = [v["_id"] for v, _ in stale]  # someone else moved a view meanwhile: read again
    raise RuntimeError(f"unread counts of rooms {pending} did not settle")


def view_json(view: dict[str, Any]) -> dict[str, Any]:
    """A view in the reference's ChatRoomView shape, with ISO-8601 timestamps."""
    last = view.get("lastMessage")
    return {
        "roomId": view["_id"],
        "roomName": view["roomName"],
        "participantIds": list(view["participantIds"]),
        "unreadStatus": dict(view.get("unreadStatus") or unread_status(view)),
        "unreadCount": dict(view.get("unreadCount") or unread_counts(view)),
        "lastMessage": None if last is None else _last_message_json(last),
        "createdAt": iso(view["createdAt"]),
        "updatedAt": iso(view["updatedAt"]),
        # Added to the reference's view: who may remove people (None in a view from before it).
        "createdBy": view.get("createdBy"),
    }


def _last_message_json(last: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": last["messageId"],
        "senderId": last["senderId"],
        "content": last["content"],
        "sentAt": iso(last["sentAt"]),
        "type": last.get("type", USER),
    }


def cache_entry(view: dict[str, Any]) -> cache.ViewEntry:
    """A complete view as the read cache keeps it."""
    return cache.ViewEntry(
        int(view.get("rev", 0)), iso(view["updatedAt"]), render(view_json(view)), view["participantIds"]
    )


def is_complete(view: dict[str, Any] | None) -> bool:
    """A view exists for readers once its RoomCreated has been applied."""
    return view is not None and "roomName" in view


def _announcements(batch: Batch, views: dict[int, dict[str, Any]]) -> list[Event]:
    """RoomUpdated for rooms whose state, last message, or a read position this batch set;
    RoomRemoved for the customers its removals named who are not in the room now;
    ReadStatusUpdated for markers it set. "Set" means the view now holds this batch's value, so
    a batch replayed after a crash announces again what it may not have announced before."""
    announced: list[Event] = []
    for room_id, facts in batch.rooms.items():
        view = views.get(room_id)
        if not is_complete(view):
            continue  # the room's creation will announce it
        assert view is not None
        participants = set(view["participantIds"])
        markers = [
            c for c, m in facts.read_up_to.items() if view.get("readUpTo", {}).get(str(c)) == m and c in participants
        ]
        if _sets_room_or_last(facts, view) or markers or _sets_a_read(facts, view, participants):
            announced.append(RoomUpdated(**view_json(view)))
        gone = sorted(c for c in facts.removed if c not in participants)
        if gone:
            announced.append(RoomRemoved(roomId=room_id, customerIds=gone))
        for customer_id in markers:
            unread = bool(view["unreadStatus"].get(str(customer_id), False))
            announced.append(ReadStatusUpdated(roomId=room_id, customerId=customer_id, isUnread=unread))
    return announced


def _sets_room_or_last(facts: RoomFacts, view: dict[str, Any]) -> bool:
    """Whether the view holds the room state or the last message (in its state) of the batch."""
    if facts.room is not None and view.get("roomRev", 0) == facts.room.revision:
        return True
    last = view.get("lastMessage")
    if last is None:
        return False
    if facts.last_message is not None and last["messageId"] == facts.last_message.messageId:
        return True
    state = facts.updated.get(last["messageId"])
    return state is not None and last.get("rev") == state.revision


def _sets_a_read(facts: RoomFacts, view: dict[str, Any], participants: set[int]) -> bool:
    """Whether the view holds a participant's read position as the batch moved it."""
    held = view.get("readSeq") or {}
    return any(held.get(str(c)) == s for c, s in facts.read_seq.items() if c in participants)


def fold(
    events: list[Event],
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]], dict[tuple[int, int], int]]:
    """The whole projection computed in memory from an event log: views, messages, markers."""
    batch = Batch()
    for event in events:
        batch.add(event)
    messages = {m.messageId: message_document(m) for m in batch.messages.values()}
    messages.update((m.messageId, message_document(m)) for m in batch.updates.values())
    markers = {(r, c): m for r, facts in batch.rooms.items() for c, m in facts.read_up_to.items()}
    return view_documents(batch), messages, markers


def view_documents(batch: Batch) -> dict[int, dict[str, Any]]:
    """Each room's view as the facts of `batch` alone make it, unread counts settled."""
    return {room_id: view_document(room_id, facts) for room_id, facts in batch.rooms.items()}


def view_document(room_id: int, facts: RoomFacts) -> dict[str, Any]:
    """A room's view as these facts alone make it, unread counts settled."""
    view: dict[str, Any] = {"_id": room_id, "rev": 0}
    if facts.room is not None:
        view.update(room_state(facts.room))
        view["updatedAt"] = view["createdAt"]
    if facts.last_message is not None:
        view["lastMessage"] = facts.last_summary()
        sent = parse_iso(facts.last_message.sentAt)
        view["updatedAt"] = max(view.get("updatedAt", sent), sent)
    if facts.read_up_to:
        view["readUpTo"] = {str(c): m for c, m in facts.read_up_to.items()}
    if facts.last_seq:
        view["lastSeq"] = facts.last_seq
    if facts.read_seq:
        view["readSeq"] = {str(c): s for c, s in facts.read_seq.items()}
    view.update(unread_fields(view))
    return view


def marker_documents(batch: Batch) -> list[dict[str, Any]]:
    return [
        {"roomId": room_id, "customerId": customer_id, "lastReadMessageId": message_id}
        for room_id, facts in batch.rooms.items()
        for customer_id, message_id in facts.read_up_to.items()
    ]

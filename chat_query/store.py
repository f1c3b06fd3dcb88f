"""The MongoDB read store: collections, indexes, generations and portable bulk writes.

A rebuild writes a new generation of the collections and then flips the `active` pointer in
`projectionMeta`, so readers switch at once and never see a half-built store.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pymongo
from django.conf import settings
from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from chat_query import ferretdb
from chatproject import backends

DUPLICATE_KEY = 11000
# FerretDB 1.x holds a PostgreSQL connection per matching update until the whole command
# ends; with its pool of 50, one bulk of more updates than that hangs the server. Bulks are
# sent in commands of at most this many updates.
BULK_CHUNK = 40
META = "projectionMeta"
_POINTER_TTL_S = 1.0


@dataclass(frozen=True)
class Update:
    """One update of a bulk: filter, update document and whether to insert when nothing matches."""

    filter: dict[str, Any]
    update: dict[str, Any]
    upsert: bool = False


class ReadStore:
    """The three collections of one generation: chatRoomViews, messages, readMarkers."""

    def __init__(self, db: Database[Any], generation: str = "") -> None:
        self.db = db
        self.generation = generation
        suffix = f"_{generation}" if generation else ""
        self.views: Collection[Any] = db[f"chatRoomViews{suffix}"]
        self.messages: Collection[Any] = db[f"messages{suffix}"]
        self.markers: Collection[Any] = db[f"readMarkers{suffix}"]

    def ensure_indexes(self) -> None:
        self.views.create_index(
            [("participantIds", pymongo.ASCENDING), ("updatedAt", pymongo.DESCENDING)], name="user_rooms_sort_idx"
        )
        self.messages.create_index(
            [("roomId", pymongo.ASCENDING), ("_id", pymongo.DESCENDING)], name="room_message_idx"
        )
        self.markers.create_index(
            [("roomId", pymongo.ASCENDING), ("customerId", pymongo.ASCENDING)],
            name="unique_read_marker_idx",
            unique=True,
        )
        ferretdb.add_containment_indexes(
            self.db.name,
            {
                self.views.name: ("_id", "participantIds"),
                self.messages.name: ("_id", "roomId"),
                self.markers.name: ("_id", "roomId"),
            },
        )

    def find_by_ids(self, collection: Collection[Any], ids: list[Any]) -> list[dict[str, Any]]:
        """The documents with these ids. FerretDB scans for `$in` but uses an index per `_id`."""
        if settings.FERRETDB_POSTGRES_URL:
            found = (collection.find_one({"_id": i}) for i in ids)
            return [document for document in found if document is not None]
        return list(collection.find({"_id": {"$in": ids}}))

    def drop(self) -> None:
        for collection in (self.views, self.messages, self.markers):
            collection.drop()

    # --- Portable bulk writes (the embedded store has no bulk_write) ----------------------

    def update_many_ops(self, collection: Collection[Any], updates: Sequence[Update], *, ordered: bool = False) -> int:
        """Apply updates in one round trip; return how many matched or were inserted.

        An upsert that loses an insert race to another process is tried again on its own.
        """
        if not updates:
            return 0
        if _is_embedded(collection):
            return sum(_update_one(collection, u) for u in updates)
        if len(updates) > BULK_CHUNK:
            return sum(
                self.update_many_ops(collection, updates[i : i + BULK_CHUNK], ordered=ordered)
                for i in range(0, len(updates), BULK_CHUNK)
            )
        try:
            result = collection.bulk_write(
                [UpdateOne(u.filter, u.update, upsert=u.upsert) for u in updates], ordered=ordered
            )
        except BulkWriteError as exc:
            _raise_unless_duplicates(exc)
            if ordered:  # the rest was not run: finish one by one
                return sum(_update_one(collection, u) for u in updates)
            done = int(exc.details.get("nMatched", 0)) + int(exc.details.get("nUpserted", 0))
            lost = [updates[e["index"]] for e in exc.details.get("writeErrors", [])]
            return done + sum(_update_one(collection, u) for u in lost)
        return result.matched_count + result.upserted_count

    def insert_new(self, collection: Collection[Any], documents: list[dict[str, Any]]) -> None:
        """Insert documents, skipping those whose key is already there (a redelivery)."""
        if not documents:
            return
        if _is_embedded(collection):
            for document in documents:
                with contextlib.suppress(DuplicateKeyError):
                    collection.insert_one(dict(document))
            return
        try:
            collection.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            _raise_unless_duplicates(exc)


def _is_embedded(collection: Collection[Any]) -> bool:
    return type(collection).__module__.startswith("mongomock")


def _update_one(collection: Collection[Any], update: Update) -> int:
    """One update; an upsert that lost an insert race is tried again as an update.

    A second duplicate-key error means the document exists and the condition is false: the
    update has nothing to do.
    """
    for _ in range(2):
        try:
            result = collection.update_one(update.filter, update.update, upsert=update.upsert)
        except DuplicateKeyError:
            continue
        return int(result.matched_count) + (1 if result.upserted_id is not None else 0)
    return 0


def _raise_unless_duplicates(exc: BulkWriteError) -> None:
    others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
    if others or exc.details.get("writeConcernErrors"):
        raise exc


_cached: tuple[float, str] | None = None


def active_generation(db: Database[Any] | None = None, *, fresh: bool = False) -> str:
    """The generation readers and the projector use (cached for a second)."""
    global _cached
    now = time.monotonic()
    if not fresh and _cached is not None and now - _cached[0] < _POINTER_TTL_S:
        return _cached[1]
    database = db if db is not None else backends.mongo_db()
    pointer = database[META].find_one({"_id": "active"})
    generation = str(pointer["generation"]) if pointer else ""
    _cached = (now, generation)
    return generation


def activate(generation: str, db: Database[Any] | None = None) -> None:
    global _cached
    database = db if db is not None else backends.mongo_db()
    database[META].update_one({"_id": "active"}, {"$set": {"generation": generation}}, upsert=True)
    _cached = None


def active_store(*, fresh: bool = False) -> ReadStore:
    db = backends.mongo_db()
    return ReadStore(db, active_generation(db, fresh=fresh))

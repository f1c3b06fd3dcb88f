"""The MongoDB read store: collections, indexes, generations and portable bulk writes.

A rebuild writes a new generation of the collections and then flips the `active` pointer in
`projectionMeta`, so readers switch at once and never see a half-built store.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pymongo
from django.conf import settings
from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from chat_query import ferretdb
from infrastructure import backends

DUPLICATE_KEY = 11000
# FerretDB 1.x holds a PostgreSQL connection per matching update until the whole command
# ends, and waits for one when its pool (50) is empty: commands that together want more than
# that hang the server for good. So a process sends at most _CONCURRENCY commands at once,
# bulks of at most _CONCURRENT_CHUNK updates when beside others and BULK_CHUNK when alone,
# and holds at most 21 connections: two processes writing at once (the projector and a
# rebuild) still fit.
BULK_CHUNK = 20
_CONCURRENCY = 4
_CONCURRENT_CHUNK = 5
# Inserts of at least twice this many documents are split into _CONCURRENCY commands at once
# (an insert holds one connection).
_INSERT_CHUNK = 500
META = "projectionMeta"
_POINTER_TTL_S = 1.0
T = TypeVar("T")


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
        """The documents with these ids. FerretDB scans for `$in` but uses an index per `_id`,
        so there they are read one by one, a few at a time."""
        if settings.FERRETDB_POSTGRES_URL:
            chunks = [ids[i::_CONCURRENCY] for i in range(_CONCURRENCY)]
            found = self.concurrently(*[functools.partial(_each_by_id, collection, c) for c in chunks if c])
            return [document for documents in found for document in documents]
        return list(collection.find({"_id": {"$in": ids}}))

    def concurrently(self, *calls: Callable[[], T]) -> list[T]:
        """Run independent commands at once: FerretDB and PostgreSQL then use every core.
        The embedded store is not thread-safe; it runs them one after another."""
        if len(calls) < 2 or _is_embedded(self.views):
            return [call() for call in calls]
        return [future.result() for future in [_commands_pool().submit(call) for call in calls]]

    def alongside(self, main: Callable[[], T], *others: Callable[[], object]) -> T:
        """Run `main` here while `others` run at once beside it (each may itself run commands
        concurrently); return what `main` returns once all have finished."""
        if _is_embedded(self.views):
            for other in others:
                other()
            return main()
        # The steps pool only ever waits on the commands pool, never on itself: none starves.
        futures = [_steps_pool().submit(other) for other in others]
        try:
            return main()
        finally:
            for future in futures:
                future.result()

    def in_background(self, step: Callable[[], object]) -> Callable[[], object]:
        """Start `step` (which may run commands concurrently); return a wait for its end that
        raises what it raised. The embedded store runs it here and now."""
        if _is_embedded(self.views):
            step()
            return lambda: None
        return _steps_pool().submit(step).result

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
        if ordered or len(updates) <= _CONCURRENT_CHUNK:
            chunks = [updates[i : i + BULK_CHUNK] for i in range(0, len(updates), BULK_CHUNK)]
            return sum(self._bulk(collection, c, ordered) for c in chunks)
        chunks = [updates[i : i + _CONCURRENT_CHUNK] for i in range(0, len(updates), _CONCURRENT_CHUNK)]
        return sum(self.concurrently(*[functools.partial(self._bulk, collection, c, False) for c in chunks]))

    def _bulk(self, collection: Collection[Any], updates: Sequence[Update], ordered: bool) -> int:
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

    def insert_new(self, collection: Collection[Any], documents: list[dict[str, Any]]) -> set[Any]:
        """Insert documents, skipping those whose key is already there (a redelivery); return
        the keys of those skipped."""
        if not documents:
            return set()
        if _is_embedded(collection):
            skipped = set()
            for document in documents:
                try:
                    collection.insert_one(dict(document))
                except DuplicateKeyError:
                    skipped.add(document["_id"])
            return skipped
        if len(documents) >= 2 * _INSERT_CHUNK:
            size = -(-len(documents) // _CONCURRENCY)
            parts = [documents[i : i + size] for i in range(0, len(documents), size)]
            return set().union(*self.concurrently(*[functools.partial(_insert_many, collection, p) for p in parts]))
        return _insert_many(collection, documents)


def _insert_many(collection: Collection[Any], documents: list[dict[str, Any]]) -> set[Any]:
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        _raise_unless_duplicates(exc)
        return {documents[e["index"]]["_id"] for e in exc.details.get("writeErrors", [])}
    return set()


def _each_by_id(collection: Collection[Any], ids: list[Any]) -> list[dict[str, Any]]:
    found = (collection.find_one({"_id": i}) for i in ids)
    return [document for document in found if document is not None]


@functools.cache
def _commands_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_CONCURRENCY, thread_name_prefix="read-store")


@functools.cache
def _steps_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_CONCURRENCY, thread_name_prefix="read-store-step")


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

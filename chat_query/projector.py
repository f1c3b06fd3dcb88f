"""The projector role: command events in, read model and realtime announcements out.

It consumes RoomCreated, MessageSent and RoomChanged (one topic, in commit order per room),
ReadMarkerUpdated and MessageUpdated, and announces RoomUpdated (the room as its current
participants now see it), RoomRemoved (customers no longer in it) and ReadStatusUpdated.

Which events it projected it remembers in Redis, a key per event. Redis Cluster takes a script
or an MGET only over keys of one slot, so the keys are spread over a fixed set of hash tags by
a hash of the event id, and a batch sends one script (or MGET) per tag among its events, all
in one pipeline. The same names serve one Redis.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import zlib
from collections.abc import Iterable
from typing import Any

import pymongo
from django.conf import settings
from django.db import connection

from chat_command.events import COMMAND_TOPICS
from chat_query import cache, projection, search
from chat_query.store import active_store
from infrastructure import backends, namespace
from infrastructure.messaging import bus, consumers
from infrastructure.messaging.events import Envelope, Event

logger = logging.getLogger(__name__)

# Event ids are remembered this long (in Redis, expiring by themselves), so a redelivery
# within it announces nothing twice. Forgetting one only repeats an announcement: the
# projection itself is idempotent without them.
REMEMBER_S = 7 * 24 * 3600
# The hash tags of the processed-event keys: enough to spread them (the largest share of the
# keys) over a cluster's primaries; a batch of thousands of events sends this many commands.
PROCESSED_BUCKETS = 64
CACHE_REPAIR_EVERY_S = 1.0
# Rooms whose views the projector keeps as it last wrote them (a few hundred bytes each).
MEMO_ROOMS = 20_000


class Projector:
    name: str = "projector"
    topics: tuple[str, ...] = COMMAND_TOPICS
    # A batch costs a few read-store commands per room it touches, whatever its size.
    batch_size: int = 5000

    def __init__(self) -> None:
        # Room lists and unread counts may wait this long; messages reach rooms through the pusher.
        self.linger_s = settings.PROJECTOR_LINGER_MS / 1000
        self._lock = threading.Lock()
        active_store().ensure_indexes()
        # A projector that stopped may have changed views without caching them.
        self._repairing = threading.Event()
        self._memo, self._memo_generation = projection.ViewMemo(MEMO_ROOMS), ""
        self._cache_stale = not cache.forget_views()
        if self._cache_stale:
            self._repair_cache_soon()

    def handle(self, envelopes: list[Envelope]) -> list[Event]:
        with self._lock:
            seen = _remembered(envelopes)
            fresh = [e.event() for e, done in zip(envelopes, seen, strict=True) if not done]
            if not fresh:
                return []
            store = active_store()
            if self._memo_generation != store.generation:
                self._memo, self._memo_generation = projection.ViewMemo(MEMO_ROOMS), store.generation
            announced, views = projection.apply_batch(store, fresh, self._memo)
            search.index(fresh)
            self._cache(store.generation, views.values())
            return announced

    def _cache(self, generation: str, views: Iterable[dict[str, Any]]) -> None:
        """Write the changed views to the read cache, unless it waits to be orphaned."""
        if self._cache_stale:
            return  # _repair_cache_soon orphans it when Redis answers; these views go with it
        entries = [(v["_id"], projection.cache_entry(v)) for v in views if projection.is_complete(v)]
        if not cache.put_views(generation, entries):
            self._cache_stale = True
            self._repair_cache_soon()

    def _repair_cache_soon(self) -> None:
        """Orphan the cache as soon as Redis answers again, batches or not: until then it may
        hold views older than the read store's."""
        if self._repairing.is_set():
            return
        self._repairing.set()

        def repair() -> None:
            try:
                while True:
                    time.sleep(CACHE_REPAIR_EVERY_S)
                    with self._lock:
                        if not self._cache_stale or cache.forget_views():
                            self._cache_stale = False
                            return
            finally:
                self._repairing.clear()

        threading.Thread(target=repair, name="read-cache-repair", daemon=True).start()

    def done(self, envelopes: list[Envelope]) -> None:
        try:
            _remember(envelopes)
        except backends.REDIS_ERRORS as exc:
            logger.warning("could not remember %d projected events (Redis: %s)", len(envelopes), exc)

    def healthy(self) -> bool:
        """Whether both stores it writes answer: the read store, and PostgreSQL (the search table)."""
        try:
            with pymongo.timeout(2):
                backends.mongo_db().command("ping")
            consumers.replace_broken_connections()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means a store does not answer
            return False
        return True


# KEYS: the events' keys. ARGV: seconds to remember them.
_REMEMBER = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, '1', 'EX', tonumber(ARGV[1]))
end
"""


def processed_key(event_id: str) -> str:
    """The Redis key that remembers an event was projected."""
    return _key_prefix(_bucket(event_id)) + event_id


def _key_prefix(bucket: int) -> str:
    return namespace.tagged(f"projected-{bucket}", "")


def _bucket(event_id: str) -> int:
    # crc32, not hash(): every process must put an event in the same bucket.
    return zlib.crc32(event_id.encode()) % PROCESSED_BUCKETS


def _keys_by_tag(envelopes: list[Envelope]) -> tuple[list[str], list[list[str]]]:
    """Each event's processed key, and the same keys in groups that share a hash tag."""
    # The namespace is read once a tag, not once an event: thousands of times cost milliseconds.
    prefixes: dict[int, str] = {}
    groups: dict[int, list[str]] = {}
    keys = []
    for envelope in envelopes:
        bucket = _bucket(envelope.event_id)
        if bucket not in prefixes:
            prefixes[bucket] = _key_prefix(bucket)
        keys.append(prefixes[bucket] + envelope.event_id)
        groups.setdefault(bucket, []).append(keys[-1])
    return keys, list(groups.values())


def _remember(envelopes: list[Envelope]) -> None:
    pipe = backends.redis_client().pipeline(transaction=False)
    # One script for each tag's keys: a pipeline of thousands of SETs costs more to build.
    # EVAL by its name: redis-py's cluster pipeline has neither pipe.eval nor pipe.evalsha,
    # and sends commands by name to the slot of their keys; EVAL needs no reload after a failover.
    for keys in _keys_by_tag(envelopes)[1]:
        pipe.execute_command("EVAL", _REMEMBER, len(keys), *keys, REMEMBER_S)
    pipe.execute()


def _remembered(envelopes: list[Envelope]) -> list[bool]:
    """Which events were projected before; while Redis is down, none (projecting is idempotent)."""
    keys, groups = _keys_by_tag(envelopes)
    try:
        pipe = backends.redis_client().pipeline(transaction=False)
        for group in groups:
            # By its name: redis-py's cluster pipeline refuses pipe.mget (whose keys may span
            # slots), and these share one.
            pipe.execute_command("MGET", *group)
        answers = pipe.execute()
    except backends.REDIS_ERRORS as exc:
        logger.warning("projecting without the processed-event memory (Redis: %s)", exc)
        return [False] * len(envelopes)
    found = dict(zip(itertools.chain(*groups), itertools.chain(*answers), strict=True))
    return [found[key] is not None for key in keys]


def embedded_projector(stop: threading.Event) -> None:
    """In the embedded mode: take events from the in-process bus, after rebuilding from the log."""
    from chat_query.rebuild import replay

    role = Projector()
    consumers.subscribe_embedded(role)
    try:
        # The in-process store starts empty; the outbox is the log. Events arriving meanwhile
        # are applied twice at most, which changes nothing.
        with role._lock:
            count = replay(active_store(), progress=False)
        logger.info("embedded read store rebuilt from %d events", count)
        stop.wait()
    finally:
        bus.unsubscribe(role.name)

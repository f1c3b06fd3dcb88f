"""Replay the event log (the outbox table) into a read store; rebuild into a new generation."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator

from chat_command.events import COMMAND_TOPICS
from chat_command.models import OutboxEvent
from chat_query import cache, projection, search
from chat_query.store import ReadStore, activate, active_generation
from infrastructure import backends
from infrastructure.messaging.events import Event, registered_types
from infrastructure.progress import progress_bar

logger = logging.getLogger(__name__)

CHUNK = 5000
# How long the switch to a new generation takes to reach every process (the pointer is cached
# for a second) and a batch the projector began before it to finish.
_SWITCH_S = 2.0


def _events_after(after_id: int, chunk: int) -> Iterator[tuple[int, list[Event]]]:
    """Chunks of command events in log order, with the last row id of each chunk."""
    types = registered_types()
    last = after_id
    while True:
        rows = list(
            OutboxEvent.objects.filter(id__gt=last, topic__in=COMMAND_TOPICS)
            .order_by("id")
            .values_list("id", "type", "payload")[:chunk]
        )
        if not rows:
            return
        last = rows[-1][0]
        yield last, [types[type_name](**payload) for _, type_name, payload in rows]


def replay(store: ReadStore, *, after_id: int = 0, progress: bool = True) -> int:
    """Apply every logged event after `after_id` to `store`; return how many were applied."""
    total = OutboxEvent.objects.filter(id__gt=after_id).count()
    applied = 0
    with progress_bar(total, f"replay into {store.generation or 'base'}", "event", enabled=progress) as bar:
        for _, events in _events_after(after_id, CHUNK):
            projection.apply(store, events)
            search.index(events)
            applied += len(events)
            bar.update(len(events))
    cache.forget_views()  # readers may have cached views that the replay changed
    return applied


def _nothing() -> None:
    return None


def load(store: ReadStore, *, progress: bool = True) -> int:
    """Fill an empty `store` from the whole log; return how many events it holds.

    Messages are inserted chunk by chunk as they are read; the room views and read markers
    are folded in memory (a few facts per room) and inserted once at the end, so a rebuild
    writes every document once instead of updating views event by event.
    """
    total = OutboxEvent.objects.filter(topic__in=COMMAND_TOPICS).count()
    rooms = projection.Batch()
    loaded = 0
    inserting: Callable[[], object] = _nothing
    # The revision each message was inserted in: an update in a later chunk is written at the end.
    inserted_at: dict[int, int] = {}
    with progress_bar(total, f"load into {store.generation}", "event", enabled=progress) as bar:
        for _, events in _events_after(0, CHUNK):
            for event in events:
                rooms.add(event)
            search.index(events)
            documents = [projection.message_document(rooms.updates.get(i, m)) for i, m in rooms.messages.items()]
            inserted_at.update((d["_id"], d["rev"]) for d in documents if d["rev"])
            rooms.messages.clear()
            inserting()  # the previous chunk's messages went in while this one was read
            inserting = store.in_background(functools.partial(store.insert_new, store.messages, documents))
            loaded += len(events)
            bar.update(len(events))
        inserting()
    later = [u for u in rooms.updates.values() if inserted_at.get(u.messageId) != u.revision]
    projection.write_message_updates(store, later)
    store.insert_new(store.views, list(projection.view_documents(rooms).values()))
    store.insert_new(store.markers, projection.marker_documents(rooms))
    return loaded


def rebuild(*, progress: bool = True) -> tuple[str, int, float]:
    """Build a new generation from the log, switch readers to it, drop the old one.

    The API keeps serving the old generation until the switch. The projector keeps writing
    to the old one meanwhile, and until it re-reads the pointer after the switch; the replay
    after that brings over anything it wrote there.
    """
    db = backends.mongo_db()
    old = active_generation(db, fresh=True)
    new = f"g{time.time_ns()}"
    store = ReadStore(db, new)
    store.drop()
    store.ensure_indexes()
    started = time.perf_counter()
    last_id = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    count = load(store, progress=progress)
    elapsed = time.perf_counter() - started
    activate(new, db)
    time.sleep(_SWITCH_S)  # the projector and readers re-read the pointer every second
    replay(store, after_id=max(last_id - 1000, 0), progress=False)
    ReadStore(db, old).drop()
    logger.info("read store rebuilt as generation %s from %d events in %.1f s", new, count, elapsed)
    return new, count, elapsed

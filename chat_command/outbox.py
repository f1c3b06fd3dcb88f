"""The transactional outbox: events are rows written in the transaction that caused them."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from chat_command.models import OutboxEvent
from chatproject.events import Envelope, Event
from chatproject.timeutil import iso, parse_iso

NOTIFY_CHANNEL = "chat_outbox"
# Wakes a relay in this process (the embedded mode) as soon as a transaction commits.
local_wakeup = threading.Event()


def record(*events: Event) -> list[Envelope]:
    """Add events to the current transaction; they exist if and only if it commits."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox.record must run inside transaction.atomic()")
    envelopes = [Envelope.wrap(event) for event in events]
    OutboxEvent.objects.bulk_create(
        OutboxEvent(
            event_id=envelope.event_id,
            topic=event.TOPIC,
            key=event.key(),
            type=envelope.type,
            version=envelope.version,
            payload=envelope.payload,
            occurred_at=parse_iso(envelope.occurred_at),
        )
        for envelope, event in zip(envelopes, events, strict=True)
    )
    if connection.vendor == "postgresql":
        # Delivered to listening relays when (and only if) the transaction commits.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    transaction.on_commit(local_wakeup.set)
    return envelopes


def envelope_of(row: OutboxEvent) -> Envelope:
    return Envelope(str(row.event_id), row.type, row.version, iso(row.occurred_at), row.payload)


def pending(limit: int, exclude: Iterable[int] = ()) -> list[OutboxEvent]:
    """Unpublished rows in log order, leaving out those already handed to the publisher."""
    query = OutboxEvent.objects.filter(published_at__isnull=True)
    excluded = list(exclude)
    if excluded:
        query = query.exclude(id__in=excluded)
    return list(query.order_by("id")[:limit])


def mark_published(ids: Iterable[int]) -> int:
    return OutboxEvent.objects.filter(id__in=list(ids), published_at__isnull=True).update(published_at=timezone.now())


def pending_stats() -> tuple[int, float | None]:
    """How many rows wait, and the age in seconds of the oldest."""
    query = OutboxEvent.objects.filter(published_at__isnull=True)
    oldest = query.order_by("id").values_list("occurred_at", flat=True).first()
    age = (timezone.now() - oldest).total_seconds() if oldest else None
    return query.count(), age

"""The transactional outbox: events are rows written in the transaction that caused them."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from infrastructure.messaging.events import Envelope, Event
from infrastructure.observability import metrics
from infrastructure.observability.logs import current_request_id
from infrastructure.timeutil import iso, parse_iso

NOTIFY_CHANNEL = "chat_outbox"
# Wakes a relay in this process (the embedded mode) as soon as a transaction commits.
local_wakeup = threading.Event()


# An outbox row's columns as commands write them, with their PostgreSQL types; Row.columns()
# gives the values in this order, and the send function (chat_command.sending) takes them so.
COLUMNS = {
    "event_id": "uuid",
    "topic": "text",
    "key": "text",
    "type": "text",
    "version": "smallint",
    "payload": "jsonb",
    "occurred_at": "timestamptz",
    "request_id": "text",
}
_INSERT_SQL = f"INSERT INTO outbox_events ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"


def record(*events: Event) -> list[Envelope]:
    """Add events to the current transaction; they exist if and only if it commits."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox.record must run inside transaction.atomic()")
    rows = [row_of(event) for event in events]
    # Plain SQL: this runs inside every command. On PostgreSQL a statement trigger NOTIFYs
    # listening relays at commit (migration 0002); this process's relay is woken directly.
    with connection.cursor() as cursor:
        cursor.executemany(_INSERT_SQL, [row.columns() for row in rows])
    transaction.on_commit(local_wakeup.set)
    counted(rows)
    return [row.envelope for row in rows]


@dataclass(frozen=True)
class Row:
    """An event as its outbox row holds it."""

    envelope: Envelope
    topic: str
    key: str

    def columns(self) -> tuple[Any, ...]:
        """The values of COLUMNS, in its order."""
        e = self.envelope
        payload = json.dumps(e.payload, ensure_ascii=False)
        return (e.event_id, self.topic, self.key, e.type, e.version, payload, parse_iso(e.occurred_at), e.request_id)


def row_of(event: Event) -> Row:
    """The row recording `event`, stamped with the current request's id."""
    return row_for(type(event), event.payload())


def row_for(event_type: type[Event], payload: dict[str, Any]) -> Row:
    """The row recording an event of `event_type` with these fields (the send's function adds the
    ones only the database knows), stamped with the current request's id."""
    envelope = Envelope.new(event_type, payload, current_request_id())
    return Row(envelope, event_type.TOPIC, event_type.key_of(payload))


def counted(rows: list[Row]) -> None:
    """Count rows as recorded; whatever writes outbox rows besides `record` calls this too."""
    metrics.count_by_type(metrics.EVENTS_RECORDED, (row.envelope.type for row in rows))


@dataclass(frozen=True)
class PendingRow:
    id: int
    topic: str
    key: str
    value: bytes
    type: str = ""
    event_id: str = ""
    request_id: str | None = None


def pending(limit: int, exclude: Collection[int] = ()) -> list[PendingRow]:
    """Unpublished rows in log order, encoded for the bus, minus those already handed over."""
    sql = "SELECT id, event_id, topic, key, type, version, payload, occurred_at, request_id FROM outbox_events"
    sql += " WHERE published_at IS NULL"
    params: list[Any] = list(exclude)
    if params:
        sql += f" AND id NOT IN ({', '.join(['%s'] * len(params))})"
    sql += " ORDER BY id LIMIT %s"
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [_encoded(*row) for row in rows]


def _encoded(
    row_id: int,
    event_id: Any,
    topic: str,
    key: str,
    type_: str,
    version: int,
    payload: Any,
    occurred_at: Any,
    request_id: str | None,
) -> PendingRow:
    if isinstance(payload, str):  # SQLite hands JSON back as text
        payload = json.loads(payload)
    if isinstance(occurred_at, str):
        occurred_at = parse_iso(occurred_at)
    envelope = Envelope(str(uuid.UUID(str(event_id))), type_, version, iso(occurred_at), payload, request_id)
    return PendingRow(row_id, topic, key, envelope.to_bytes(), type_, envelope.event_id, request_id)


def mark_published(ids: Collection[int]) -> list[str]:
    """Mark rows published; return the types of those that were not already (for counting)."""
    if not ids:
        return []
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE outbox_events SET published_at = %s WHERE id IN ({placeholders}) AND published_at IS NULL"
            " RETURNING type",
            [timezone.now(), *ids],
        )
        return [type_ for (type_,) in cursor.fetchall()]


def pending_summary() -> tuple[int, datetime | None]:
    """How many rows wait for the relay, and when the oldest of them was recorded."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), min(occurred_at) FROM outbox_events WHERE published_at IS NULL")
        count, oldest = cursor.fetchone()
    if isinstance(oldest, str):  # SQLite hands timestamps back as text, in UTC
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
    return int(count), oldest

"""The outbox relay: publishes pending outbox rows in log order and marks them published.

One relay is active per database (a PostgreSQL advisory lock; others wait as standbys). Idle,
it sleeps until a commit notifies it (LISTEN/NOTIFY, or an in-process event), so it adds
milliseconds, not a polling interval. Busy, it is not notified: PostgreSQL commits notifying
transactions one at a time, through their WAL flush, so notifications made every send wait for
the one before. With rows in flight it looks at the outbox again once they are confirmed, and
falls asleep (commits notify again) once a look finds nothing; a commit that saw it busy ends
before it can fall asleep, and its look after that sees the rows (migration 0010).

Rows are marked published only after the bus confirmed them; a relay killed in between
publishes those rows again on restart (same eventId, so consumers drop the duplicates). While
Kafka is down, rows stay pending and the producer keeps retrying in order; the commands that
wrote them have already succeeded. While PostgreSQL is down (a restart), the relay waits for
it, connects again and takes the lock again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from chat_command import outbox
from infrastructure import namespace
from infrastructure.env import POSTGRES_URL_OPTIONS
from infrastructure.messaging import bus
from infrastructure.observability import metrics

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# Rows handed to the publisher but not yet confirmed; past this the relay waits for confirmations.
MAX_IN_FLIGHT = 5000
IDLE_WAIT_S = 1.0
# How long one wait for delivery reports lasts while rows are in flight.
CONFIRM_WAIT_S = 0.002
# Confirmed rows are marked published together: when nothing else is in flight, or once this
# many wait, or once the oldest has waited this long. Under load one UPDATE then covers many
# produce requests; a relay killed before marking publishes those rows again (same eventId).
MARK_BATCH = 500
MARK_EVERY_S = 0.05
ADVISORY_LOCK_KEY = 0x0C4A7_0B0C  # "chat outbox"
# Held by the active relay while it sleeps: commits notify it only then (migration 0010).
SLEEP_LOCK_KEY = 0x0C4A7_05EE
# What the relay's two connections raise while PostgreSQL is away (Django's, and the coordinator's own).
DATABASE_AWAY = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
RECONNECT_MAX_WAIT_S = 5.0


class Publisher(Protocol):
    def send(self, row_id: int, topic: str, key: str, value: bytes) -> bool:
        """Queue one record; False when the queue is full (try again after poll)."""

    def poll(self, timeout: float) -> tuple[list[int], list[int]]:
        """Serve delivery reports: (confirmed row ids, failed row ids)."""

    def close(self) -> None: ...


class KafkaPublisher:
    """An idempotent producer (acks=all) that retries without a deadline, keeping order."""

    def __init__(self, **overrides: Any) -> None:
        from confluent_kafka import Producer

        from infrastructure.backends import kafka_config

        self._confirmed: list[int] = []
        self._failed: list[int] = []
        self._producer = Producer(
            kafka_config(
                **{
                    "enable.idempotence": True,
                    "acks": "all",
                    # One request in flight, and no wait for company: the relay reads the
                    # rows committed while a batch is out only once it is confirmed (migration
                    # 0010), so they go together in the next request anyway. A 3 ms wait paid
                    # off while every commit woke the relay (995-1,044 -> 1,061-1,079 commands/s);
                    # since, it only delayed each batch. Taking turns with 3 ms, three runs each
                    # (docs/benchmarks.md): commit-to-Kafka p50/p99 7.3/12.1 -> 3.6/7.9 ms,
                    # commands/s 1,220 -> 1,132, CPU a message in the pipeline the same at 100
                    # and 500/s and 0.2 ms more at 300/s.
                    "linger.ms": 0,
                    "max.in.flight.requests.per.connection": 1,
                    "message.timeout.ms": 0,  # never give up: Kafka being down only delays
                    "compression.type": "lz4",
                    **overrides,
                }
            )
        )

    def send(self, row_id: int, topic: str, key: str, value: bytes) -> bool:
        def report(error: Any, _message: Any) -> None:
            (self._failed if error else self._confirmed).append(row_id)
            if error:
                logger.error("outbox row %s was not delivered: %s", row_id, error)

        try:
            self._producer.produce(topic, key=key.encode(), value=value, on_delivery=report)
        except BufferError:
            return False
        return True

    def poll(self, timeout: float) -> tuple[list[int], list[int]]:
        self._producer.poll(timeout)
        confirmed, failed = self._confirmed, self._failed
        self._confirmed, self._failed = [], []
        return confirmed, failed

    def close(self) -> None:
        self._producer.flush(5)


class InProcessPublisher:
    """The embedded bus: hands each record to the subscribed roles before confirming it."""

    def __init__(self) -> None:
        self._confirmed: list[int] = []

    def send(self, row_id: int, topic: str, key: str, value: bytes) -> bool:
        bus.dispatch(topic, value)
        self._confirmed.append(row_id)
        return True

    def poll(self, timeout: float) -> tuple[list[int], list[int]]:
        confirmed, self._confirmed = self._confirmed, []
        return confirmed, []

    def close(self) -> None:
        pass


class Coordinator(Protocol):
    # Whether commits announce their rows now; while the relay is awake they leave it to look.
    asleep: bool

    def acquire(self, stop: threading.Event) -> bool: ...

    def wake(self) -> None:
        """Commits stop announcing their rows: the relay has rows in flight and looks again after."""

    def fall_asleep(self) -> None:
        """Commits announce their rows from now on, unless a transaction that saw the relay awake
        has not ended yet (it stays awake, and tries again after its next look)."""

    def wait(self, timeout: float) -> None:
        """Block until a commit wrote outbox rows, or `timeout` passed."""

    def woken(self) -> bool:
        """Whether a commit wrote outbox rows since the last wait or woken, without blocking."""

    def reconnect(self, stop: threading.Event) -> None:
        """Give up the lock and connect again after the database failed; block until connected or `stop`."""

    def release(self) -> None: ...


class PostgresCoordinator:
    """Single active relay by advisory lock; wake-ups by LISTEN on the outbox channel."""

    def __init__(self, database: dict[str, Any] | None = None) -> None:
        self._database = database or settings.DATABASES["default"]
        self._conn = self._connect()
        self.asleep = False

    def _connect(self) -> psycopg.Connection[Any]:
        db = self._database
        # The URL's libpq options (a failover list's target_session_attrs, TLS) hold here too.
        libpq = {name: value for name, value in db.get("OPTIONS", {}).items() if name in POSTGRES_URL_OPTIONS}
        conn = psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"],
            password=db["PASSWORD"],
            host=db["HOST"],
            port=db["PORT"],
            autocommit=True,
            **{"connect_timeout": 5, **libpq},
        )
        conn.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
        return conn

    def acquire(self, stop: threading.Event) -> bool:
        announced = False
        while not stop.is_set():
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY]).fetchone()
            if row and row[0]:
                return True
            if not announced:
                logger.info("another relay is active; waiting as a standby")
                announced = True
            stop.wait(2.0)
        return False

    def wake(self) -> None:
        if self.asleep:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", [SLEEP_LOCK_KEY])
            self.asleep = False

    def fall_asleep(self) -> None:
        if not self.asleep:
            # Not while a transaction that saw the relay awake holds it shared: waiting for one
            # would hold up the relay for as long as that transaction lasts.
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", [SLEEP_LOCK_KEY]).fetchone()
            self.asleep = bool(row and row[0])

    def wait(self, timeout: float) -> None:
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            pass

    def woken(self) -> bool:
        return bool(list(self._conn.notifies(timeout=0)))

    def reconnect(self, stop: threading.Event) -> None:
        self._conn.close()  # a session's advisory locks end with it
        self.asleep = False
        delay = 0.2
        while not stop.wait(delay):
            try:
                self._conn = self._connect()
                return
            except DATABASE_AWAY as exc:
                logger.warning("the outbox relay cannot reach PostgreSQL yet (%s)", exc)
                delay = min(delay * 2, RECONNECT_MAX_WAIT_S)

    def release(self) -> None:
        self._conn.close()


class LocalCoordinator:
    """One process, one relay: wake-ups come from on-commit hooks in this process, on every commit."""

    _lock = threading.Lock()
    asleep = True

    def wake(self) -> None:
        pass

    def fall_asleep(self) -> None:
        pass

    def acquire(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            if self._lock.acquire(timeout=0.5):
                return True
        return False

    def wait(self, timeout: float) -> None:
        outbox.local_wakeup.wait(timeout)
        outbox.local_wakeup.clear()

    def woken(self) -> bool:
        if not outbox.local_wakeup.is_set():
            return False
        outbox.local_wakeup.clear()
        return True

    def reconnect(self, stop: threading.Event) -> None:
        self.release()  # acquire() takes it again
        stop.wait(0.2)

    def release(self) -> None:
        self._lock.release()


def default_coordinator() -> Coordinator:
    return PostgresCoordinator() if connection.vendor == "postgresql" else LocalCoordinator()


def default_publisher() -> Publisher:
    return KafkaPublisher() if settings.KAFKA_BOOTSTRAP_SERVERS else InProcessPublisher()


def run_relay(stop: threading.Event, publisher: Publisher, coordinator: Coordinator) -> None:
    """Publish until `stop` is set, through database outages; returns after handing over what it had confirmed."""
    in_flight: set[int] = set()  # handed to the publisher and not yet marked published
    marks = _Marks()
    try:
        while not stop.is_set():
            try:
                if not coordinator.acquire(stop):
                    break
                logger.info("outbox relay active")
                _relay_while_active(stop, publisher, coordinator, in_flight, marks)
            except DATABASE_AWAY as exc:
                # Rows in flight stay there: their confirmations are marked once it is back.
                logger.warning("the outbox relay lost PostgreSQL (%s); connecting again", exc)
                connection.close()
                coordinator.reconnect(stop)
        publisher.close()
        _settle(*publisher.poll(0), in_flight, marks)
        marks.flush(in_flight)
    finally:
        coordinator.release()
        connection.close()  # this thread's connection; the relay may run in a thread of its own


def _relay_while_active(
    stop: threading.Event, publisher: Publisher, coordinator: Coordinator, in_flight: set[int], marks: _Marks
) -> None:
    look = True  # whether new pending rows may exist: at start, after a wake-up, a full batch or a failure
    looked_at = 0.0
    while not stop.is_set():
        # The outbox is read when a commit announced rows, once the rows in flight are
        # confirmed, or once a second should a wake-up ever be missed; not while waiting for
        # confirmations: reading it again and again cost PostgreSQL more than the commands did.
        look = look or coordinator.woken() or time.monotonic() - looked_at >= IDLE_WAIT_S
        sent = 0
        if look:
            sent, look = _send_batch(publisher, in_flight)
            looked_at = time.monotonic()
            if sent:
                coordinator.wake()
        # Straight on while a full batch was sent; otherwise wait a little for confirmations
        # (with MAX_IN_FLIGHT rows out, say while Kafka is down, this keeps the loop from spinning).
        confirmed, failed = publisher.poll(0 if sent and look else CONFIRM_WAIT_S)
        look = _settle(confirmed, failed, in_flight, marks) or look
        if marks.due(unconfirmed=len(in_flight) - len(marks.ids)):
            marks.flush(in_flight)
        if not sent and not in_flight and not look:
            if coordinator.asleep:
                coordinator.wait(IDLE_WAIT_S)
            else:
                # Commits made while rows were in flight did not announce theirs: one more look.
                coordinator.fall_asleep()
            look = True


def _send_batch(publisher: Publisher, in_flight: set[int]) -> tuple[int, bool]:
    """Hand pending rows to the publisher: (how many, whether more may be waiting)."""
    if len(in_flight) >= MAX_IN_FLIGHT:
        return 0, True
    sent = 0
    tracing = logger.isEnabledFor(logging.DEBUG)
    rows = outbox.pending(BATCH_SIZE, exclude=in_flight)
    for row in rows:
        # The outbox keeps logical topic names; the bus carries this deployment's.
        if not publisher.send(row.id, namespace.topic(row.topic), row.key, row.value):
            return sent, True
        in_flight.add(row.id)
        sent += 1
        if tracing:
            logger.debug(
                "relaying %s %s to %s",
                row.type,
                row.event_id,
                row.topic,
                extra={"request_id": row.request_id, "event_id": row.event_id, "event_type": row.type},
            )
    return sent, len(rows) == BATCH_SIZE


class _Marks:
    """Rows the bus confirmed that wait to be marked published."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.oldest = 0.0

    def add(self, ids: list[int]) -> None:
        if ids and not self.ids:
            self.oldest = time.monotonic()
        self.ids.extend(ids)

    def due(self, unconfirmed: int) -> bool:
        return bool(self.ids) and (
            unconfirmed == 0 or len(self.ids) >= MARK_BATCH or time.monotonic() - self.oldest >= MARK_EVERY_S
        )

    def flush(self, in_flight: set[int]) -> None:
        if self.ids:
            metrics.count_by_type(metrics.EVENTS_PUBLISHED, outbox.mark_published(self.ids))
            in_flight.difference_update(self.ids)
            self.ids = []


def _settle(confirmed: list[int], failed: list[int], in_flight: set[int], marks: _Marks) -> bool:
    """Record what the publisher reported; True when failed rows wait to be sent again."""
    marks.add(confirmed)
    if failed:
        # Leave them pending; the next batch sends them again.
        in_flight.difference_update(failed)
        time.sleep(0.5)
        return True
    return False


def embedded_relay(stop: threading.Event) -> None:
    """The relay role as run inside the web process (registered with infrastructure.messaging.workers)."""
    run_relay(stop, default_publisher(), default_coordinator())

"""Consumer roles (projector, pusher): the same handlers fed by Kafka or by the embedded bus.

With Kafka, a role is a consumer group that commits offsets only after its batch was handled
and what it derived was published (at-least-once; handlers are idempotent). A failing batch
is retried with backoff; if the role's backend is healthy, the events are then tried one by
one and those that keep failing go to the dead-letter topic with an error log line, so a
poison event never blocks its partition. If the backend itself is down, the role waits for it
instead: an outage is not a reason to dead-letter anything.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.db import connections
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from infrastructure import backends, namespace
from infrastructure.messaging import bus
from infrastructure.messaging.events import Envelope, Event, MalformedEvent, decode
from infrastructure.observability import metrics

logger = logging.getLogger(__name__)

DEAD_LETTER_TOPIC = "chat-events-dlq"
ATTEMPTS = 4
BACKOFF_S = 0.2
STATUS_EVERY_S = 10.0


class Role(Protocol):
    name: str
    # Logical names: the runners consume them in this deployment's namespace.
    topics: tuple[str, ...]
    # The most records handled at once. Only what is already fetched is taken (and, for a role
    # with a `linger_s` attribute, what comes that many seconds after the batch's first record),
    # so a large batch adds no latency; it lets a role amortise its per-batch work.
    batch_size: int

    def handle(self, envelopes: list[Envelope]) -> list[Event]:
        """Apply a batch; return the events it derives, to be published before the commit."""

    def done(self, envelopes: list[Envelope]) -> None:
        """Called once the derived events are published (for example to remember event ids)."""

    def healthy(self) -> bool:
        """Whether the role's backend answers; failures while unhealthy are not the event's fault."""


_roles: dict[str, Callable[[], Role]] = {}


def register_role(name: str, factory: Callable[[], Role]) -> None:
    _roles[name] = factory
    metrics.read_at_scrape_time("consumer_lag", ConsumerLagCollector())


def role_names() -> list[str]:
    return sorted(_roles)


def make_role(name: str) -> Role:
    if name not in _roles:
        raise KeyError(f"unknown role {name!r}; known roles: {', '.join(role_names())}")
    return _roles[name]()


@dataclass
class Status:
    role: str
    assigned: bool = False
    processed: int = 0
    dead_lettered: int = 0
    lag: int | None = None
    last_event_id: str | None = None
    last_event_at: str | None = None
    updated: float = field(default_factory=time.time)

    def save(self) -> None:
        """Store it as the latest of the group's, and as this member's own (see member_name)."""
        self.updated = time.time()
        text = json.dumps(self.__dict__)
        try:
            client = backends.redis_client()
            client.set(_status_key(self.role), text, ex=3600)
            client.set(_status_key(self.role, member_name()), text, ex=3600)
        except Exception:
            logger.debug("could not store the status of %s", self.role, exc_info=True)


def read_status(role: str, member: str | None = None) -> dict[str, Any] | None:
    """The latest status any member of the group stored, or that one member's (member_name())."""
    raw = backends.redis_client().get(_status_key(role, member))
    return json.loads(raw) if raw else None


def member_name() -> str:
    """This process among the members of its groups: CHAT_INSTANCE_NAME, else the host's name.

    A role with several members (two projectors) is healthy only when each member is: a
    container's healthcheck runs on the member's host and reads the member's own status.
    """
    return os.environ.get("CHAT_INSTANCE_NAME") or socket.gethostname()


def _status_key(role: str, member: str | None = None) -> str:
    return namespace.key(f"consumer_status:{role}" + (f"@{member}" if member else ""))


def handle_with_retries(
    role: Role, envelopes: list[Envelope], dead_letter: Callable[[Envelope, str], None]
) -> list[Event]:
    """Handle a batch; isolate and dead-letter poison events; wait out backend outages."""
    error = _attempt(role, envelopes)
    if not isinstance(error, Exception):
        return error
    derived: list[Event] = []
    for envelope in envelopes:
        while True:
            result = _attempt(role, [envelope])
            if not isinstance(result, Exception):
                derived.extend(result)
                break
            if role.healthy():
                logger.error(
                    "dead-lettering %s event %s after %d attempts: %s: %s",
                    envelope.type,
                    envelope.event_id,
                    ATTEMPTS,
                    type(result).__name__,
                    result,
                    extra=_event_fields(envelope),
                )
                dead_letter(envelope, f"{type(result).__name__}: {result}")
                break
            logger.warning("%s backend is unavailable; holding event %s", role.name, envelope.event_id)
            time.sleep(1.0)
    return derived


def _attempt(role: Role, envelopes: list[Envelope]) -> list[Event] | Exception:
    error: Exception = RuntimeError("not attempted")
    for attempt in range(ATTEMPTS):
        replace_broken_connections()
        try:
            return role.handle(envelopes)
        except Exception as exc:  # noqa: BLE001 - any failure is retried, then isolated
            error = exc
            logger.warning("%s failed (attempt %d of %d): %s", role.name, attempt + 1, ATTEMPTS, exc)
            time.sleep(BACKOFF_S * 2**attempt)
    return error


def replace_broken_connections() -> None:
    """Close each database connection of this thread that failed and no longer answers (a
    PostgreSQL restart), so its next use opens a new one instead of failing on the dead one
    forever. Healthy connections stay open, whatever their age."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
            connection.close()


def _event_fields(envelope: Envelope) -> dict[str, Any]:
    return {"request_id": envelope.request_id, "event_id": envelope.event_id, "event_type": envelope.type}


def handled(role: str, envelopes: list[Envelope]) -> None:
    """Count a handled batch by type; at DEBUG, log one line per event under its request id."""
    metrics.count_by_type(metrics.EVENTS_CONSUMED, (e.type for e in envelopes), role)
    if logger.isEnabledFor(logging.DEBUG):
        for envelope in envelopes:
            logger.debug("%s handled %s %s", role, envelope.type, envelope.event_id, extra=_event_fields(envelope))


# --- Embedded mode ---------------------------------------------------------------------


def subscribe_embedded(role: Role) -> None:
    """Feed the role from the in-process bus; what it derives goes back onto the bus."""
    status = Status(role.name)

    def deliver(topic: str, value: bytes) -> None:
        try:
            envelope, _ = decode(value)
        except MalformedEvent as exc:
            logger.error("dropping a malformed %s record in embedded mode: %s", topic, exc)
            return
        derived = handle_with_retries(role, [envelope], lambda e, reason: _embedded_dead_letter(status, e, reason))
        for event in derived:
            bus.dispatch(namespace.topic(event.TOPIC), Envelope.wrap(event).to_bytes())
        role.done([envelope])
        handled(role.name, [envelope])
        status.processed += 1
        status.last_event_id, status.last_event_at = envelope.event_id, envelope.occurred_at

    bus.subscribe(role.name, [namespace.topic(t) for t in role.topics], deliver)


def _embedded_dead_letter(status: Status, envelope: Envelope, reason: str) -> None:
    status.dead_lettered += 1
    metrics.EVENTS_DEAD_LETTERED.labels(status.role).inc()


# --- Kafka mode ------------------------------------------------------------------------

# For a moment after a topic is created its partitions have no leader yet; a new group's start
# is read from the leader, so the read is retried that long instead of killing the process.
LEADERLESS_WAIT_S = 30.0


def _end_offset(consumer: Any, partition: Any) -> int:
    """The partition's end offset, waiting out a partition that has no leader yet."""
    from confluent_kafka import KafkaError, KafkaException

    # librdkafka does not mark these retriable, though they are while a leader is being elected.
    leaderless = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE}
    deadline = time.monotonic() + LEADERLESS_WAIT_S
    while True:
        try:
            return int(consumer.get_watermark_offsets(partition, timeout=10)[1])
        except KafkaException as exc:
            if exc.args[0].code() not in leaderless or time.monotonic() > deadline:
                raise
            logger.info("waiting for a leader of %s[%d]: %s", partition.topic, partition.partition, exc)
            time.sleep(0.2)


class KafkaRunner:
    """One consumer-group member running a role until `stop` is set."""

    def __init__(self, role: Role, stop: threading.Event) -> None:
        from confluent_kafka import Consumer, Producer

        self.role, self.stop = role, stop
        # When the records handled so far must be committed by; None: all are.
        self.commit_due: float | None = None
        self.group = f"{settings.KAFKA_GROUP_PREFIX}-{role.name}"
        self.status = Status(self.group)
        self.consumer = Consumer(
            backends.kafka_config(
                **{
                    "group.id": self.group,
                    "enable.auto.commit": False,
                    "auto.offset.reset": settings.KAFKA_AUTO_OFFSET_RESET,
                    # The broker answers a fetch as soon as a record arrives; this is only how
                    # often an idle member asks again (each ask costs the broker CPU).
                    "fetch.wait.max.ms": 500,
                    # A crashed member's partitions move to the others after this long.
                    "session.timeout.ms": 10000,
                    "max.poll.interval.ms": 600000,
                }
            )
        )
        self.producer = Producer(
            backends.kafka_config(
                **{"enable.idempotence": True, "acks": "all", "linger.ms": 0, "message.timeout.ms": 0}
            )
        )

    def run(self) -> None:
        from infrastructure.messaging.topics import ensure_topics

        ensure_topics()
        topics = [namespace.topic(t) for t in self.role.topics]
        self.consumer.subscribe(topics, on_assign=self._assigned, on_revoke=self._revoked)
        logger.info("%s consuming %s", self.role.name, ", ".join(topics))
        next_status = time.monotonic() + STATUS_EVERY_S
        try:
            while not self.stop.is_set():
                records = self._next_batch()
                if records:
                    self._process(records)
                self._commit(now=not records)
                if time.monotonic() >= next_status:
                    self._report()
                    next_status = time.monotonic() + STATUS_EVERY_S
        finally:
            self.producer.flush(10)
            with contextlib.suppress(Exception):  # raises when nothing was consumed since the last commit
                self.consumer.commit(asynchronous=False)
            self.consumer.close()
            self._report()
            logger.info("%s stopped", self.role.name)

    def _next_batch(self) -> list[Any]:
        """Wait for one record, then take whatever else is already buffered, and whatever comes
        within the role's `linger_s` (none by default) while the batch is not full.

        consume(n, timeout) waits the whole timeout unless n records are ready: each event waits
        at most the linger, and a role without one adds no latency at low rates.
        """
        first = self.consumer.poll(0.1)
        if first is None:
            return []
        batch = [first, *self.consumer.consume(num_messages=self.role.batch_size - 1, timeout=0)]
        linger = getattr(self.role, "linger_s", 0.0)
        if linger > 0 and len(batch) < self.role.batch_size:
            batch += self.consumer.consume(num_messages=self.role.batch_size - len(batch), timeout=linger)
        return batch

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        if settings.KAFKA_AUTO_OFFSET_RESET == "latest":
            # Pin a new group's start now, not at its first fetch: whatever is produced after
            # the assignment is then certain to be read.
            committed = consumer.committed(partitions, timeout=10)
            pinned = []
            for partition, done in zip(partitions, committed, strict=True):
                if done.offset < 0:
                    partition.offset = _end_offset(consumer, partition)
                    pinned.append(partition)
            consumer.assign(partitions)
            if pinned:  # durable, so a member that crashes before its first commit loses nothing
                consumer.commit(offsets=pinned, asynchronous=False)
        self.status.assigned = True
        self.status.save()
        logger.info("%s assigned %d partitions", self.group, len(partitions))

    def _process(self, records: list[Any]) -> None:
        envelopes = []
        for record in records:
            if record.error():
                logger.warning("%s consumer error: %s", self.role.name, record.error())
                continue
            try:
                envelopes.append(decode(record.value() or b"")[0])
            except MalformedEvent as exc:
                logger.error("dead-lettering a malformed record from %s: %s", record.topic(), exc)
                self._dead_letter_raw(record.topic(), record.key(), record.value(), str(exc))
        if envelopes:
            derived = handle_with_retries(self.role, envelopes, self._dead_letter)
            for event in derived:
                topic = namespace.topic(event.TOPIC)
                self.producer.produce(topic, key=event.key().encode(), value=Envelope.wrap(event).to_bytes())
            self._flush()
            self.role.done(envelopes)
            handled(self.role.name, envelopes)
            self.status.processed += len(envelopes)
            self.status.last_event_id = envelopes[-1].event_id
            self.status.last_event_at = envelopes[-1].occurred_at
        if self.commit_due is None:
            self.commit_due = time.monotonic() + settings.KAFKA_COMMIT_INTERVAL_MS / 1000

    def _commit(self, *, now: bool) -> None:
        """Commit the records handled so far, `now` or once the interval since the first of them
        has passed. A commit that fails only means those events come again."""
        if self.commit_due is None or (not now and time.monotonic() < self.commit_due):
            return
        self.commit_due = None
        self.consumer.commit(asynchronous=True)

    def _revoked(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions about to go to another member: what was handled of them is committed first,
        so the member taking them over does not handle it again."""
        from confluent_kafka import KafkaException

        if self.commit_due is not None:
            self.commit_due = None
            with contextlib.suppress(KafkaException):  # nothing new to commit
                consumer.commit(asynchronous=False)

    def _flush(self) -> None:
        while self.producer.flush(5) > 0:
            logger.warning("%s is waiting for Kafka to accept its derived events", self.role.name)

    def _dead_letter(self, envelope: Envelope, reason: str) -> None:
        self._dead_letter_raw(envelope.type, envelope.event_id.encode(), envelope.to_bytes(), reason)

    def _dead_letter_raw(self, source: str, key: bytes | None, value: bytes | None, reason: str) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            ("source", source.encode()),
            ("role", self.role.name.encode()),
            ("error", reason.encode()[:1000]),
        ]
        self.producer.produce(namespace.topic(DEAD_LETTER_TOPIC), key=key, value=value, headers=headers)
        self.status.dead_lettered += 1
        metrics.EVENTS_DEAD_LETTERED.labels(self.role.name).inc()

    def _report(self) -> None:
        from confluent_kafka import TopicPartition

        try:
            assignment = self.consumer.assignment()
            positions = self.consumer.position(assignment) if assignment else []
            lag = 0
            for tp in positions:
                # The high watermark the last fetch brought (the consumer fetches every few ms):
                # asking the broker, partition by partition, held up every event in the loop
                # for ~100 ms at each report.
                _, high = self.consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), cached=True)
                if tp.offset >= 0 and high >= 0:  # a partition not fetched yet has nothing to compare
                    lag += max(high - tp.offset, 0)
            self.status.lag = lag
        except Exception as exc:  # noqa: BLE001 - lag is informative; a failed probe is logged, not fatal
            logger.warning("%s could not measure its lag: %s", self.role.name, exc)
        self.status.save()
        logger.info(
            "%s: %d events processed, %d dead-lettered, lag %s, last event %s at %s",
            self.role.name,
            self.status.processed,
            self.status.dead_lettered,
            self.status.lag,
            self.status.last_event_id,
            self.status.last_event_at,
        )


def uses_kafka() -> bool:
    return bool(settings.KAFKA_BOOTSTRAP_SERVERS)


def lag_by_role(timeout: float = 5.0) -> dict[str, int]:
    """For each role whose group has committed: records on its topics past its committed offsets.

    Read from Kafka (the group's committed offsets against each partition's end), so it covers
    every member of the group, running or not. A plain consumer of the group's id reads them
    without joining the group; the admin client's group-offsets call crashed the process
    (a segmentation fault in the client library) on a freshly provisioned broker.
    """
    from confluent_kafka import Consumer, TopicPartition

    lags: dict[str, int] = {}
    for name in role_names():
        group = f"{settings.KAFKA_GROUP_PREFIX}-{name}"
        topics = {namespace.topic(t) for t in getattr(_roles[name], "topics", ())}
        consumer = Consumer(backends.kafka_config(**{"group.id": group, "enable.auto.commit": False}))
        try:
            known = consumer.list_topics(timeout=timeout).topics
            partitions = [TopicPartition(t, p) for t in sorted(topics & set(known)) for p in known[t].partitions]
            found = consumer.committed(partitions, timeout=timeout) if partitions else []
            committed = [tp for tp in found if tp.offset >= 0]
            if committed:
                ends = [
                    consumer.get_watermark_offsets(TopicPartition(t.topic, t.partition), timeout) for t in committed
                ]
                lags[name] = sum(max(high - t.offset, 0) for (_, high), t in zip(ends, committed, strict=True))
        finally:
            consumer.close()
    return lags


class ConsumerLagCollector(Collector):
    """Each role's lag: records on its topics past its group's committed offsets, from Kafka."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not uses_kafka():
            return
        lag = GaugeMetricFamily(
            "chat_consumer_lag", "Records a consumer role has not committed yet, by role.", labels=["role"]
        )
        try:
            by_role = lag_by_role()
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even when Kafka does not
            logger.warning("could not read the consumer lag from Kafka: %s", exc)
            return
        for role, behind in by_role.items():
            lag.add_metric([role], behind)
        yield lag

"""The Kafka topics of this deployment's namespace: created with their partitions before use."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from infrastructure import namespace


def ensure_topics(topics: tuple[str, ...] = ()) -> None:
    """Create these topics (logical names) in this deployment's namespace, if missing.

    By default: the topic of every registered event type, and the dead-letter topic. Created
    explicitly so each has the configured partitions (keyed by roomId), copies on
    KAFKA_REPLICATION_FACTOR brokers, and KAFKA_MIN_INSYNC_REPLICAS of them holding a write
    before the broker acknowledges it (producers ask acks=all). The minimum is the topic's own
    setting, so it holds whatever the brokers' default is.
    """
    from confluent_kafka.admin import NewTopic

    from infrastructure.backends import kafka_admin
    from infrastructure.messaging.consumers import DEAD_LETTER_TOPIC
    from infrastructure.messaging.events import registered_types

    logical = topics or (*sorted({cls.TOPIC for cls in registered_types().values()}), DEAD_LETTER_TOPIC)
    topics = tuple(namespace.topic(name) for name in logical)
    admin = kafka_admin()
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [t for t in topics if t not in existing]
    if not missing:
        return
    in_sync = {"min.insync.replicas": str(settings.KAFKA_MIN_INSYNC_REPLICAS)}
    futures = admin.create_topics(
        [
            NewTopic(
                t,
                num_partitions=settings.KAFKA_TOPIC_PARTITIONS,
                replication_factor=settings.KAFKA_REPLICATION_FACTOR,
                config=in_sync,
            )
            for t in missing
        ]
    )
    for future in futures.values():
        try:
            future.result(timeout=30)
        except Exception as exc:  # a concurrent creator won the race: the topic exists
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    _await_leaders(admin, missing)


def _await_leaders(admin: Any, topics: list[str], timeout: float = 30.0) -> None:
    """Wait until every partition of these new topics answers for its end offset.

    CreateTopics answers before the broker leads the new partitions: whoever used one at once
    (a group committing an offset, a role pinning its start) was told that it does not exist,
    or that the broker is not its leader, for the next ~100 ms.
    """
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    deadline = time.monotonic() + timeout
    while True:
        known = admin.list_topics(timeout=10).topics
        try:
            if all(t in known and known[t].partitions for t in topics):
                ends = {TopicPartition(t, p): OffsetSpec.latest() for t in topics for p in known[t].partitions}
                for future in admin.list_offsets(ends, request_timeout=10).values():
                    future.result()
                return
        except KafkaException:
            pass  # not led yet: ask again
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kafka created {', '.join(topics)} but did not lead them within {timeout:.0f} s")
        time.sleep(0.05)

"""Read what the system publishes to Kafka from the moment a test starts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from chatproject.events import Envelope, decode


class TopicTail:
    """Assigned (not subscribed) at each partition's current end, so only new records are seen."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        from chat_command.relay import ensure_topics

        ensure_topics()  # a topic that does not exist yet has no end to start from
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"tail-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
        assignment = []
        for topic in topics:
            metadata = self.consumer.list_topics(topic, timeout=10)
            for partition in metadata.topics[topic].partitions:
                _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                assignment.append(TopicPartition(topic, partition, high))
        self.consumer.assign(assignment)

    def collect(
        self, wanted: Callable[[Envelope], bool], count: int, timeout: float = 30.0, settle: float = 0.0
    ) -> list[Envelope]:
        """Envelopes matching `wanted`, until `count` arrived (then `settle` more seconds) or time runs out."""
        found: list[Envelope] = []
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if len(found) >= count:
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
            message = self.consumer.poll(0.2)
            if message is None or message.error():
                continue
            envelope, _ = decode(message.value() or b"")
            if wanted(envelope):
                found.append(envelope)
        return found

    def close(self) -> None:
        self.consumer.close()

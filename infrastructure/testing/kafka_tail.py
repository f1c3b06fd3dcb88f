"""Read what the system publishes to Kafka from the moment a test starts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from infrastructure.messaging.events import Envelope, decode


class TopicTail:
    """Assigned (not subscribed) at each partition's current end, so only new records are seen;
    or, `from_beginning`, at each partition's first record.

    It never commits, so it leaves no consumer group behind on a shared broker.
    """

    def __init__(self, bootstrap: str, topics: list[str], from_beginning: bool = False) -> None:
        from infrastructure.messaging.topics import ensure_topics

        ensure_topics()  # a topic that does not exist yet has no end to start from
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"tail-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
        assignment = []
        for topic in topics:
            metadata = self.consumer.list_topics(topic, timeout=10)
            for partition in metadata.topics[topic].partitions:
                low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                assignment.append(TopicPartition(topic, partition, low if from_beginning else high))
        self.consumer.assign(assignment)
        # The offset of the next record to read, per partition, to know when the tail reached an end.
        self.next_offset = {(tp.topic, tp.partition): tp.offset for tp in assignment}

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
            value = self._next(0.2)
            if value is not None and wanted(envelope := decode(value)[0]):
                found.append(envelope)
        return found

    def read_to_end(self, wanted: Callable[[Envelope], bool], timeout: float = 30.0) -> list[Envelope]:
        """Envelopes matching `wanted` among all records in the topics now, read up to each partition's end.

        For what was certainly published already (confirmed by the broker): no settling time, and
        a duplicate or an extra record cannot arrive after the test looked.
        """
        return [e for value in self.values_to_end(timeout) if wanted(e := decode(value)[0])]

    def values_to_end(self, timeout: float = 30.0) -> list[bytes]:
        """The raw values of all records in the topics now, malformed ones included, read up to
        each partition's end."""
        ends = {}
        for topic, partition in self.next_offset:
            ends[(topic, partition)] = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)[1]
        found: list[bytes] = []
        deadline = time.monotonic() + timeout
        while any(self.next_offset[tp] < end for tp, end in ends.items()):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the tail did not reach the end of its topics in {timeout} s: {self.next_offset}")
            value = self._next(0.2)
            if value is not None:
                found.append(value)
        return found

    def _next(self, timeout: float) -> bytes | None:
        message = self.consumer.poll(timeout)
        if message is None or message.error():
            return None
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is not None and partition is not None and offset is not None:  # always set on a record
            self.next_offset[(topic, partition)] = offset + 1
        return message.value() or b""

    def close(self) -> None:
        self.consumer.close()

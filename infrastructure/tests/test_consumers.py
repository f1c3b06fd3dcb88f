"""The Kafka consumer runner against the real broker."""

import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from chat_command.events import MessageSent
from infrastructure import backends, namespace
from infrastructure.messaging import consumers
from infrastructure.messaging.events import Envelope
from infrastructure.testing.waiting import wait_for
from infrastructure.timeutil import iso, now_ms

pytestmark = pytest.mark.integration


def test_a_new_groups_start_is_read_even_while_a_new_topics_partitions_have_no_leader(kafka_bootstrap, unique):
    """A role may be assigned a topic created a moment ago: reading its end then waits for the
    leader instead of killing the process with NOT_LEADER_FOR_PARTITION."""
    topic = namespace.topic(f"leaderless-{unique}")
    admin = backends.kafka_admin()
    admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])[topic].result(timeout=30)
    reader = Consumer(backends.kafka_config(**{"group.id": namespace.topic(f"reader-{unique}")}))
    try:
        ends = [consumers._end_offset(reader, TopicPartition(topic, partition)) for partition in range(6)]
    finally:
        reader.close()
    assert ends == [0] * 6


class CommitWatcher:
    """A role handed two records at a time that, at its `look_at`-th record, waits up to
    `patience` seconds for its group to commit anything and notes what it saw."""

    name, batch_size = "commit-watcher", 2

    def __init__(self, topic: str, group: str, look_at: int, patience: float) -> None:
        self.topics = (topic,)
        self.group, self.look_at, self.patience = group, look_at, patience
        self.handled = 0
        self.committed_meanwhile: int | None = None

    def handle(self, envelopes):
        before = self.handled
        self.handled += len(envelopes)
        if before < self.look_at <= self.handled:
            deadline = time.monotonic() + self.patience
            self.committed_meanwhile = committed(self.group, self.topics[0])
            while self.committed_meanwhile < 0 and time.monotonic() < deadline:
                time.sleep(0.05)
                self.committed_meanwhile = committed(self.group, self.topics[0])
        return []

    def done(self, envelopes):
        pass

    def healthy(self):
        return True


def committed(group: str, topic: str) -> int:
    """The group's committed offset on the topic's one partition; negative while it has none."""
    reader = Consumer(backends.kafka_config(**{"group.id": group, "enable.auto.commit": False}))
    try:
        return reader.committed([TopicPartition(namespace.topic(topic), 0)], timeout=10)[0].offset
    finally:
        reader.close()


def test_offsets_are_committed_once_an_interval_while_records_keep_coming_and_at_once_when_idle(
    settings, kafka_bootstrap, unique
):
    settings.KAFKA_COMMIT_INTERVAL_MS = 60_000
    settings.KAFKA_GROUP_PREFIX = f"{settings.KAFKA_GROUP_PREFIX}-{unique}"
    topic = f"commits-{unique}"
    admin = backends.kafka_admin()
    admin.create_topics([NewTopic(namespace.topic(topic), num_partitions=1, replication_factor=1)])[
        namespace.topic(topic)
    ].result(timeout=30)
    producer = Producer(backends.kafka_config())
    for n in range(20):
        sent = MessageSent(roomId=1, messageId=n + 1, senderId=1, senderFullName="A", content="x", sentAt=iso(now_ms()))
        producer.produce(namespace.topic(topic), value=Envelope.wrap(sent).to_bytes())
    assert producer.flush(10) == 0
    group = f"{settings.KAFKA_GROUP_PREFIX}-{CommitWatcher.name}"
    role, stop = CommitWatcher(topic, group, look_at=12, patience=1.5), threading.Event()
    thread = threading.Thread(target=consumers.KafkaRunner(role, stop).run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: role.handled == 20, 60)
        # Ten batches back to back: within the interval none of them was committed.
        assert role.committed_meanwhile is not None, "the watcher looked"
        assert role.committed_meanwhile < 0
        # Then nothing more came: all of it is committed without waiting for the interval.
        assert wait_for(lambda: committed(group, topic) == 20, 5)
    finally:
        stop.set()
        thread.join(30)

"""The Kafka consumer runner against the real broker."""

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from infrastructure import backends, namespace
from infrastructure.messaging import consumers

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

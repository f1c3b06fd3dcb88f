"""A consumer role with a linger gathers the records that follow its batch's first into the batch."""

import time

import pytest
from confluent_kafka import Producer

from chat_command.events import MessageSent
from chat_query.tests.helpers import message
from infrastructure import backends, namespace
from infrastructure.messaging.events import Envelope
from infrastructure.testing.waiting import wait_for
from infrastructure.tests.test_namespace import Recorder, recording

pytestmark = [pytest.mark.integration]


class Batches(Recorder):
    """A Recorder that also notes the size of each batch it was handed."""

    def __init__(self, linger_s: float) -> None:
        super().__init__()
        self.linger_s = linger_s
        self.batches: list[int] = []

    def handle(self, envelopes):
        self.batches.append(len(envelopes))
        return super().handle(envelopes)


@pytest.fixture
def space(unique):
    yield f"batch-{unique}"
    namespace.drop(f"batch-{unique}")


def publish(number: int) -> str:
    """A MessageSent of room 1 on the namespace's topic; its event id."""
    envelope = Envelope.wrap(message(1, number, 1))
    producer = Producer(backends.kafka_config())
    producer.produce(namespace.topic(MessageSent.TOPIC), key=b"1", value=envelope.to_bytes())
    assert producer.flush(10) == 0
    return envelope.event_id


def test_a_role_with_a_linger_takes_a_record_that_came_soon_after_into_the_same_batch(settings, space, kafka_bootstrap):
    settings.KAFKA_AUTO_OFFSET_RESET = "latest"
    with recording(settings, space, Batches(linger_s=2.0)) as role:
        first = publish(1)
        time.sleep(0.1)
        second = publish(2)
        assert wait_for(lambda: second in role.seen)
    assert role.seen == [first, second]
    assert role.batches == [2]


def test_a_role_without_one_takes_what_is_there_and_goes(settings, space, kafka_bootstrap):
    settings.KAFKA_AUTO_OFFSET_RESET = "latest"
    with recording(settings, space, Batches(linger_s=0.0)) as role:
        first = publish(1)
        assert wait_for(lambda: first in role.seen)
        second = publish(2)
        assert wait_for(lambda: second in role.seen)
    assert role.batches == [1, 1]

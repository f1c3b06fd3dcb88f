"""A test run and a system running beside it on the same services never see each other's data."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pymongo
import pytest
from django.test import override_settings

from chat_command.events import COMMAND_TOPICS
from deploy.tests.prod_run import ProdRun
from deploy.tests.test_prod_run import call, login, send_message
from infrastructure import namespace
from infrastructure.testing.kafka_tail import TopicTail

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def neighbour(kafka_bootstrap, redis_url, mongo_url) -> Iterator[ProdRun]:
    """A production-like system on the same PostgreSQL server, Kafka, Redis and read store."""
    run = ProdRun().start()
    yield run
    run.stop()


def texts_in_topics(bootstrap: str, topics: list[str]) -> str:
    """Every record of the topics, from the first to the current end, as one string."""
    tail = TopicTail(bootstrap, topics, from_beginning=True)
    try:
        return b"\n".join(tail.values_to_end(timeout=60)).decode()
    finally:
        tail.close()


def texts_in_read_store(database: str) -> str:
    """Every message text of a read-model database."""
    client: pymongo.MongoClient = pymongo.MongoClient(os.environ["MONGO_URL"])
    try:
        store = client[database]
        return "\n".join(
            str(document.get("content"))
            for name in store.list_collection_names()
            for document in store[name].find({"content": {"$exists": True}}, {"content": 1})
        )
    finally:
        client.close()


def wait_for_page_with(neighbour: ProdRun, token: str, content: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page = call(f"{neighbour.base_url}/query/message/roomId/1", token=token)
        if page.status == 200 and any(m["content"] == content for m in page.json()["data"]):
            return
        time.sleep(0.2)
    pytest.fail(f"the neighbour never showed its own message {content!r}")


def test_the_tests_events_never_reach_a_system_beside_them_nor_its_events_the_tests(
    neighbour, seeded, running_relay, kafka_bootstrap
):
    from chat_command.models import OutboxEvent
    from chat_command.services import NewMessage, NewRoom, do_create_room, do_send_message

    marker = uuid.uuid4().hex[:8]
    token = login(neighbour, "user1")
    theirs_before = f"the neighbour's message before {marker}"
    send_message(neighbour, token, theirs_before)

    # The tests' room and message: the same seeded customers, the same low ids as the neighbour's.
    room = do_create_room(1, NewRoom(f"tests {marker}", [2]))
    ours = f"the tests' message {marker}"
    do_send_message(1, NewMessage(room.room_id, ours, None))
    deadline = time.monotonic() + 60
    while OutboxEvent.objects.filter(published_at__isnull=True).exists():
        assert time.monotonic() < deadline, "the tests' relay never published the tests' events"
        time.sleep(0.1)

    # A message of the neighbour's sent after the tests' events were in Kafka: once it is shown,
    # the neighbour's projector has been past the moment the tests' events arrived.
    theirs_after = f"the neighbour's message after {marker}"
    send_message(neighbour, token, theirs_after)
    wait_for_page_with(neighbour, token, theirs_before)
    wait_for_page_with(neighbour, token, theirs_after)

    tests_topics = texts_in_topics(kafka_bootstrap, [namespace.topic(t) for t in COMMAND_TOPICS])
    with override_settings(CHAT_NAMESPACE=neighbour.namespace):
        neighbours_topics = texts_in_topics(kafka_bootstrap, [namespace.topic(t) for t in COMMAND_TOPICS])
    assert theirs_after in neighbours_topics
    assert ours not in neighbours_topics
    assert ours in tests_topics
    assert theirs_before not in tests_topics
    assert theirs_after not in tests_topics
    assert ours not in texts_in_read_store(neighbour.name), "the neighbour projected the tests' message"

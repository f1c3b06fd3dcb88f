"""Through the real pipeline: request ids reach Kafka and consumer logs; lag, role and multiprocess metrics."""

import json
import logging
import os
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from django.conf import settings
from django.test import Client

from benchmarks.common import api_command, free_port, wait_for_port
from chat_command.events import MessageSent
from chat_command.services import NewRoom, do_create_room
from chat_command.tests.test_relay import all_published, send
from conftest import login
from infrastructure import backends, namespace
from infrastructure.messaging import consumers
from infrastructure.messaging.topics import ensure_topics
from infrastructure.testing.children import database_url, manage
from infrastructure.testing.kafka_tail import TopicTail
from infrastructure.testing.scrape import parse, scrape, value
from infrastructure.testing.waiting import wait_for
from realtime.pusher import Pusher
from realtime.tests.stack import token_for

pytestmark = [pytest.mark.integration]


@pytest.fixture
def committed_room(transactional_db):
    from accounts.seed import seed_customers

    seed_customers()
    return do_create_room(1, NewRoom("Traced room", [2]))


@pytest.fixture
def message_tail(kafka_bootstrap):
    tail = TopicTail(kafka_bootstrap, [namespace.topic(MessageSent.TOPIC)])
    yield tail
    tail.close()


@pytest.fixture
def group_prefix(settings):
    # Under the run's own prefix (its namespace's), so dropping the namespace ends these groups too.
    settings.KAFKA_GROUP_PREFIX = f"{settings.KAFKA_GROUP_PREFIX}-obs-{uuid.uuid4().hex[:8]}"
    return settings.KAFKA_GROUP_PREFIX


def end_of(consumer: Consumer, topic: str, partition: int) -> int:
    """A partition's end offset, once its new topic has a leader."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def commit_at_end(group: str, topics: tuple[str, ...]) -> None:
    """Make `group` look caught up: its committed offset is the end of every partition of `topics` (logical names)."""
    ensure_topics()
    consumer = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": group})
    try:
        ends = []
        for topic in map(namespace.topic, topics):
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                ends.append(TopicPartition(topic, partition, end_of(consumer, topic, partition)))
    finally:
        consumer.close()
    admin = backends.kafka_admin()
    futures = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, ends)])
    futures[group].result(timeout=10)


def test_consumer_lag_counts_the_events_a_role_has_not_consumed(group_prefix, committed_room, running_relay):
    client = Client()
    assert wait_for(all_published), "earlier events are out before the group catches up"
    commit_at_end(f"{group_prefix}-pusher", Pusher.topics)
    caught_up = scrape(client)
    assert value(caught_up, "chat_consumer_lag", role="pusher") == 0
    assert ("chat_consumer_lag", frozenset({("role", "projector")})) not in caught_up, "it never committed"

    send(committed_room, 5)
    assert wait_for(all_published)
    behind = scrape(client)
    assert value(behind, "chat_consumer_lag", role="pusher") == 5
    published = "chat_events_published_total"
    assert value(behind, published, type="MessageSent") - value(caught_up, published, type="MessageSent") == 5


def process_env(group_prefix: str) -> dict[str, str]:
    """The environment of a project process that works on this test run's databases."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MONGO_DB_NAME": settings.MONGO_DB_NAME,
        "JWT_PRIVATE_KEY_PATH": str(settings.JWT_PRIVATE_KEY_PATH),
        "JWT_PUBLIC_KEY_PATH": str(settings.JWT_PUBLIC_KEY_PATH),
        "KAFKA_GROUP_PREFIX": group_prefix,
        "KAFKA_AUTO_OFFSET_RESET": "latest",
        "CHAT_EMBEDDED_WORKERS": "false",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@pytest.fixture
def pusher_process(group_prefix, transactional_db, children):
    """`consume_events pusher` logging JSON at DEBUG and serving its metrics on a port."""
    port = free_port()
    env = {**process_env(group_prefix), "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"}
    pusher = children.start("pusher", manage("consume_events", "pusher", "--metrics-port", str(port)), env)
    wait_for_port(port, timeout=30)
    assert wait_for(lambda: (consumers.read_status(f"{group_prefix}-pusher") or {}).get("assigned"), 30)
    return port, children.log_of(pusher)


def json_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


@pytest.mark.timeout(180)  # its ceilings: the pusher's start 30 + 30 s, then 30 + 30 + 15 s
def test_a_request_id_travels_from_http_to_kafka_and_the_consumers_logs(
    pusher_process, committed_room, running_relay, message_tail, caplog
):
    port, log_path = pusher_process
    caplog.set_level(logging.DEBUG, logger="chat_command.relay")
    client = Client()
    login(client, "user1", "123")
    request_id = f"trace-{uuid.uuid4().hex[:12]}"
    response = client.post(
        "/command/message",
        {"roomId": committed_room.room_id, "content": "follow me"},
        content_type="application/json",
        HTTP_X_REQUEST_ID=request_id,
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == request_id

    records = message_tail.collect(lambda e: e.payload["roomId"] == committed_room.room_id, 1)
    assert [e.request_id for e in records] == [request_id], "the Kafka record's envelope has requestId"

    relayed = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert relayed, "the relay logs the event under its request id"

    def pusher_logged():
        return [e for e in json_lines(log_path) if e.get("request_id") == request_id]

    assert wait_for(pusher_logged, timeout=30), "the pusher logs the event under its request id"
    line = pusher_logged()[0]
    assert (line["logger"], line["level"], line["event_type"]) == (
        "infrastructure.messaging.consumers",
        "DEBUG",
        "MessageSent",
    )

    deadline = time.monotonic() + 15
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            own = parse(answer.read().decode())
        if value(own, "chat_events_consumed_total", role="pusher", type="MessageSent") >= 1:
            break
        assert time.monotonic() < deadline, "the pusher counts what it pushed on its metrics port"
        time.sleep(0.2)


def request(port: int, method: str, path: str, body: object = None, cookie: str = "") -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Cookie": cookie}
    call = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method)
    with urllib.request.urlopen(call, timeout=30) as answer:
        return answer.status, answer.read()


# --- PROMETHEUS_MULTIPROC_DIR: several processes on one host, one /metrics with all of them ---


@pytest.fixture
def processes(tmp_path, transactional_db, kafka_bootstrap, group_prefix, children):
    from accounts.seed import seed_customers

    seed_customers()
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {**process_env(group_prefix), "PROMETHEUS_MULTIPROC_DIR": str(metrics), "LOG_LEVEL": "WARNING"}
    port = free_port()
    children.start("api", api_command(port), env)  # granian with two worker processes sharing the metrics folder
    children.start("relay", manage("relay_outbox"), env)
    wait_for_port(port, timeout=60)
    return port


def test_every_web_worker_serves_the_sum_of_all_processes_on_the_host(processes):
    port = processes
    cookie = f"jwt_token={token_for(1)}"  # the test run hashes passwords with a hasher the server refuses
    _, body = request(port, "POST", "/command/room", {"roomName": "Scraped", "targetCustomerIds": [2]}, cookie)
    room_id = json.loads(body)["data"]
    for n in range(3):
        request(port, "POST", "/command/message", {"roomId": room_id, "content": f"m{n}"}, cookie)

    deadline = time.monotonic() + 30
    while True:
        scrapes = [parse(request(port, "GET", "/metrics")[1].decode()) for _ in range(4)]
        published = [value(s, "chat_events_published_total", type="MessageSent") for s in scrapes]
        if published == [3] * 4:
            break
        assert time.monotonic() < deadline, f"the relay's published events reach every scrape: {published}"
        time.sleep(0.3)
    for samples in scrapes:
        assert value(samples, "chat_commands_total", command="SendMessage", outcome="ok") == 3
        assert value(samples, "chat_events_recorded_total", type="RoomCreated") == 1
        latency = {"method": "POST", "route": "command/message", "status": "200"}
        assert value(samples, "chat_http_request_duration_seconds_count", **latency) == 3


def test_a_running_role_reports_its_lag_from_what_it_fetched(group_prefix, kafka_bootstrap, redis_url):
    """The status a role stores at intervals counts what it has fetched but not yet consumed."""
    from confluent_kafka import Producer

    logical = f"lag-{group_prefix}"
    ensure_topics((logical,))
    topic = namespace.topic(logical)

    class Idle:
        name, topics, batch_size = "idle", (logical,), 500

    runner = consumers.KafkaRunner(Idle(), threading.Event())  # a role that handles nothing
    try:
        runner.consumer.subscribe([topic], on_assign=runner._assigned)
        assert wait_for(lambda: runner.consumer.poll(0.2) is None and runner.status.assigned)
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        for n in range(5):
            producer.produce(topic, key=b"one partition", value=str(n).encode())
        assert producer.flush(10) == 0
        taken = []
        while len(taken) < 2:
            record = runner.consumer.poll(5)
            assert record is not None, "the records never arrived"
            taken.append(record)

        def reported_lag() -> int | None:
            runner._report()
            return (consumers.read_status(runner.group) or {}).get("lag")

        assert wait_for(lambda: reported_lag() == 3), f"lag {reported_lag()}"
    finally:
        runner.consumer.close()

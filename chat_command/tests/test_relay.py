"""The outbox relay against real PostgreSQL and Kafka."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection, transaction

from chat_command import outbox, relay
from chat_command.events import MessageSent
from chat_command.models import Message, OutboxEvent
from chat_command.services import NewMessage, NewRoom, do_create_room, do_send_message
from chatproject import bus, namespace
from chatproject.tests.kafka_tail import TopicTail

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "scripts" / "services"


def wait_for(condition, timeout=30.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def all_published():
    return not OutboxEvent.objects.filter(published_at__isnull=True).exists()


@pytest.fixture
def committed_room(transactional_db):
    from accounts.seed import seed_customers

    seed_customers()
    return do_create_room(1, NewRoom("Relay room", [2]))


@pytest.fixture
def tail(kafka_bootstrap):
    relay.ensure_topics()
    tail = TopicTail(kafka_bootstrap, [namespace.topic(MessageSent.TOPIC)])
    yield tail
    tail.close()


def send(room, n, sender=1):
    return [do_send_message(sender, NewMessage(room.room_id, f"message {i}", None)).message_id for i in range(n)]


def in_room(room):
    return lambda envelope: envelope.type == "MessageSent" and envelope.payload["roomId"] == room.room_id


def test_published_events_arrive_once_in_commit_order(committed_room, tail, running_relay):
    sent = send(committed_room, 30)
    received = tail.collect(in_room(committed_room), 30, settle=1.0)
    assert [e.payload["messageId"] for e in received] == sent
    assert len({e.event_id for e in received}) == 30
    assert wait_for(all_published), "confirmed rows are marked published"


def test_the_relay_wakes_on_commit_instead_of_polling(committed_room, tail, running_relay):
    send(committed_room, 1)
    tail.collect(in_room(committed_room), 1)
    for _ in range(5):
        started = time.monotonic()
        send(committed_room, 1)
        assert tail.collect(in_room(committed_room), 1, timeout=5)
        # The idle wait is a full second: arriving well within it proves the NOTIFY wake-up.
        assert time.monotonic() - started < relay.IDLE_WAIT_S / 2


def test_concurrent_sends_to_one_room_both_land_each_with_one_event(committed_room):
    barrier = threading.Barrier(2)
    ids = []

    def send_one(sender):
        barrier.wait()
        ids.append(do_send_message(sender, NewMessage(committed_room.room_id, f"from {sender}", None)).message_id)
        connection.close()

    threads = [threading.Thread(target=send_one, args=(s,)) for s in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Message.objects.filter(room=committed_room).count() == 2
    rows = list(OutboxEvent.objects.filter(type="MessageSent").order_by("id"))
    assert [r.payload["messageId"] for r in rows] == sorted(ids), "log order equals message order within a room"


def test_concurrent_retries_with_one_idempotency_key_create_one_message(committed_room):
    barrier = threading.Barrier(4)
    results = []

    def attempt():
        barrier.wait()
        results.append(do_send_message(1, NewMessage(committed_room.room_id, "once", "retry-key")).message_id)
        connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert OutboxEvent.objects.filter(type="MessageSent").count() == 1


def test_while_kafka_is_down_commands_succeed_and_events_follow_in_order(committed_room, tail, running_relay):
    assert wait_for(all_published), "the room's own event is out before the broker stops"
    subprocess.run([str(SERVICES), "down", "kafka"], check=True, capture_output=True)
    try:
        sent = send(committed_room, 5)
        time.sleep(1)
        assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 5, "nothing is lost or marked early"
    finally:
        subprocess.run([str(SERVICES), "up", "kafka"], check=True, capture_output=True)
    received = tail.collect(in_room(committed_room), 5, timeout=90, settle=2.0)
    assert [e.payload["messageId"] for e in received] == sent, "each exactly once, in order"
    assert wait_for(all_published, timeout=30)


def _test_database_url():
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + settings.DATABASES["default"]["NAME"]))


def test_a_relay_killed_mid_batch_resumes_without_losing_or_reordering(committed_room, tail):
    total = 6000
    with transaction.atomic():
        outbox.record(
            *(
                MessageSent(
                    roomId=committed_room.room_id,
                    messageId=n,
                    senderId=1,
                    senderFullName="Bulk",
                    content="x",
                    sentAt="2026-01-01T00:00:00.000Z",
                )
                for n in range(1, total + 1)
            )
        )
    env = {**os.environ, "DATABASE_URL": _test_database_url()}
    command = [sys.executable, "manage.py", "relay_outbox"]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    published = OutboxEvent.objects.filter(published_at__isnull=False)
    assert wait_for(lambda: published.exists(), timeout=60, interval=0.005)
    first.send_signal(signal.SIGKILL)
    first.wait()
    marked_at_kill = published.count()
    assert marked_at_kill < total, "the relay was killed mid-stream"

    second = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(all_published, timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0, "SIGTERM stops the relay cleanly"

    received = tail.collect(in_room(committed_room), total, timeout=60, settle=2.0)
    first_seen = []
    seen = set()
    for envelope in received:
        if envelope.event_id not in seen:
            seen.add(envelope.event_id)
            first_seen.append(envelope.payload["messageId"])
    assert first_seen == list(range(1, total + 1)), "nothing lost, nothing reordered"
    # Rows delivered but not yet marked when the relay died are delivered again; consumers
    # drop them by eventId. Only the unconfirmed window can repeat.
    assert len(received) - total <= relay.MAX_IN_FLIGHT + relay.BATCH_SIZE


def test_only_one_relay_is_active_per_database(transactional_db):
    active, standby = relay.PostgresCoordinator(), relay.PostgresCoordinator()
    assert active.acquire(threading.Event())
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    assert standby.acquire(stop) is False
    active.release()
    assert standby.acquire(threading.Event())
    standby.release()


@contextlib.contextmanager
def relay_on_the_in_process_bus(coordinator):
    """A relay in a thread, publishing to the in-process bus; yields what the bus delivered, and the thread."""
    received = []
    bus.subscribe("test-role", [namespace.topic(MessageSent.TOPIC)], lambda topic, value: received.append(value))
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_relay, args=(stop, relay.InProcessPublisher(), coordinator), daemon=True)
    thread.start()
    try:
        yield received, thread
    finally:
        stop.set()
        thread.join(10)
        bus.unsubscribe("test-role")
    assert not thread.is_alive(), "the relay stops when asked"


def test_in_process_bus_delivers_the_outbox_in_embedded_mode(committed_room):
    from chatproject.events import decode

    with relay_on_the_in_process_bus(relay.LocalCoordinator()) as (received, _):
        sent = send(committed_room, 3)
        assert wait_for(lambda: len(received) == 3, timeout=5)
        assert [decode(value)[1].messageId for value in received] == sent
        assert wait_for(all_published)


def test_the_relay_carries_on_after_postgresql_drops_its_connections(committed_room):
    """What a PostgreSQL restart does to the relay: both its connections end at once."""
    with relay_on_the_in_process_bus(relay.PostgresCoordinator()) as (received, thread):
        send(committed_room, 2)
        assert wait_for(lambda: len(received) == 2, timeout=10)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        send(committed_room, 3)
        assert wait_for(lambda: len(received) == 5, timeout=15), "the relay published what came after"
        assert thread.is_alive()
        assert wait_for(all_published)

"""The outbox relay against real PostgreSQL and Kafka."""

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka import KafkaException, TopicPartition
from django.db import connection, transaction

from chat_command import outbox, relay
from chat_command.events import MessageSent
from chat_command.models import Message, OutboxEvent
from chat_command.services import NewMessage, NewRoom, do_create_room, do_send_message
from infrastructure import namespace
from infrastructure.messaging import bus
from infrastructure.messaging.topics import ensure_topics
from infrastructure.testing.children import database_url, manage
from infrastructure.testing.kafka_tail import TopicTail
from infrastructure.testing.waiting import wait_for

pytestmark = [pytest.mark.integration]


def all_published():
    return not OutboxEvent.objects.filter(published_at__isnull=True).exists()


@pytest.fixture
def committed_room(transactional_db):
    from accounts.seed import seed_customers

    seed_customers()
    return do_create_room(1, NewRoom("Relay room", [2]))


@pytest.fixture
def tail(kafka_bootstrap):
    ensure_topics()
    tail = TopicTail(kafka_bootstrap, [namespace.topic(MessageSent.TOPIC)])
    yield tail
    tail.close()


def send(room, n, sender=1):
    return [do_send_message(sender, NewMessage(room.room_id, f"message {i}", None)).message_id for i in range(n)]


def in_room(room):
    return lambda envelope: envelope.type == "MessageSent" and envelope.payload["roomId"] == room.room_id


def test_published_events_arrive_once_in_commit_order(committed_room, tail, running_relay):
    sent = send(committed_room, 30)
    assert wait_for(all_published), "confirmed rows are marked published"
    # Marked rows were confirmed by the broker: the topic holds all of them, duplicates included.
    received = tail.read_to_end(in_room(committed_room))
    assert [e.payload["messageId"] for e in received] == sent
    assert len({e.event_id for e in received}) == 30


def test_the_relay_wakes_on_commit_instead_of_polling(committed_room, tail, monkeypatch):
    # Idle, the relay would look at the outbox only once a minute: each row published within
    # the ceiling below was published on its commit's notification.
    monkeypatch.setattr(relay, "IDLE_WAIT_S", 60.0)
    with relay_in_a_thread(relay.KafkaPublisher(), relay.PostgresCoordinator()):
        for _ in range(3):
            send(committed_room, 1)
            assert tail.collect(in_room(committed_room), 1, timeout=15), "the commit woke the relay"


def test_rows_committed_while_the_relay_is_busy_are_published_without_a_notification(committed_room, tail, monkeypatch):
    # Busy, the relay is not notified; it looks again once its rows in flight are confirmed. Idle
    # it would look only once a minute, so this fails if any row waited for that.
    monkeypatch.setattr(relay, "IDLE_WAIT_S", 60.0)
    with relay_in_a_thread(relay.KafkaPublisher(), relay.PostgresCoordinator()):
        sent = [m for batch in at_once([lambda: send(committed_room, 20)] * 3) for m in batch]
        received = tail.collect(in_room(committed_room), 60, timeout=15)
    assert sorted(e.payload["messageId"] for e in received) == sorted(sent)


def notified_within(coordinator, seconds: float) -> bool:
    started = time.monotonic()
    coordinator.wait(seconds)
    return time.monotonic() - started < seconds * 0.9


def test_commits_notify_the_relay_only_while_it_sleeps(committed_room):
    coordinator = relay.PostgresCoordinator()
    try:
        assert coordinator.asleep is False
        send(committed_room, 1)
        assert not notified_within(coordinator, 0.5), "awake: the commit left the relay to look"
        coordinator.fall_asleep()
        assert coordinator.asleep
        send(committed_room, 1)
        assert notified_within(coordinator, 5), "asleep: the commit notified"
        coordinator.wake()
        assert coordinator.asleep is False
        send(committed_room, 1)
        assert not notified_within(coordinator, 0.5)
    finally:
        coordinator.release()


def test_the_relay_falls_asleep_only_once_the_commits_that_saw_it_awake_have_ended(committed_room):
    """A transaction that skipped the notification ends before the relay sleeps, so the relay's
    look after falling asleep sees its rows."""
    inserted, release = threading.Event(), threading.Event()

    def open_transaction():
        try:
            with transaction.atomic():
                outbox.record(
                    MessageSent(
                        roomId=committed_room.room_id,
                        messageId=10**9,
                        senderId=1,
                        senderFullName="A",
                        content="held",
                        sentAt="2026-12-06T00:00:00.000Z",
                    )
                )
                inserted.set()
                assert release.wait(30)
        finally:
            connection.close()

    coordinator = relay.PostgresCoordinator()
    writer = threading.Thread(target=open_transaction)
    writer.start()
    try:
        assert inserted.wait(30)
        coordinator.fall_asleep()
        assert coordinator.asleep is False, "not while a transaction that saw it awake is open"
        release.set()
        writer.join(30)
        assert not notified_within(coordinator, 0.5), "it saw the relay awake: no notification"
        coordinator.fall_asleep()
        assert coordinator.asleep
        assert any(row.type == "MessageSent" and b"held" in row.value for row in outbox.pending(500))
    finally:
        release.set()
        writer.join(30)
        coordinator.release()


def test_the_notify_trigger_and_the_relay_use_one_sleep_lock():
    import importlib

    migration = importlib.import_module("chat_command.migrations.0010_outbox_notify_while_relay_sleeps")
    assert migration.SLEEP_LOCK_KEY == relay.SLEEP_LOCK_KEY != relay.ADVISORY_LOCK_KEY


def at_once(calls):
    """Run the calls on a thread each, released together; their results, or the first call's error."""
    barrier = threading.Barrier(len(calls), timeout=30)

    def run(call):
        try:
            barrier.wait()
            return call()
        finally:
            connection.close()  # each thread's own

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=60) for future in futures]


def test_concurrent_sends_to_one_room_both_land_each_with_one_event(committed_room):
    def send_one(sender):
        return lambda: do_send_message(sender, NewMessage(committed_room.room_id, f"from {sender}", None)).message_id

    ids = at_once([send_one(1), send_one(2)])
    assert len(set(ids)) == 2
    assert Message.objects.filter(room=committed_room).count() == 2
    rows = list(OutboxEvent.objects.filter(type="MessageSent").order_by("id"))
    assert [r.payload["messageId"] for r in rows] == sorted(ids), "log order equals message order within a room"


def test_concurrent_retries_with_one_idempotency_key_create_one_message(committed_room):
    def attempt():
        return do_send_message(1, NewMessage(committed_room.room_id, "once", "retry-key")).message_id

    ids = at_once([attempt] * 4)
    assert ids == [ids[0]] * 4, "every retry answers with the one message"
    assert Message.objects.filter(room=committed_room).count() == 1
    assert OutboxEvent.objects.filter(type="MessageSent").count() == 1


class WatchedPublisher(relay.KafkaPublisher):
    """The relay's Kafka producer, noting which rows the relay handed it and how often it polled."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: set[int] = set()
        self.polls = 0

    def send(self, row_id: int, topic: str, key: str, value: bytes) -> bool:
        queued = super().send(row_id, topic, key, value)
        if queued:
            self.handed.add(row_id)
        return queued

    def poll(self, timeout: float) -> tuple[list[int], list[int]]:
        self.polls += 1
        return super().poll(timeout)


def went_round_after_handing(publisher: WatchedPublisher, rows: set[int]) -> Callable[[], bool]:
    """Whether the relay handed over the rows, then went round its loop past the time it marks them by."""
    handed_at: list[float] = []  # when it was first seen handing them all, and its poll count then

    def condition() -> bool:
        if not handed_at:
            if rows <= publisher.handed:
                handed_at.extend((time.monotonic(), publisher.polls))
            return False
        # A row marked on sending rather than on the broker's confirmation would be marked by
        # now: confirmed rows wait at most MARK_EVERY_S and are marked after a poll.
        return time.monotonic() - handed_at[0] >= relay.MARK_EVERY_S and publisher.polls >= handed_at[1] + 2

    return condition


def finds_its_partitions(tail: TopicTail) -> bool:
    """Whether the tail's consumer reaches the leader of each of its partitions (again, after a restart)."""
    try:
        for topic, partition in tail.next_offset:
            tail.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=1)
    except KafkaException:
        return False
    return True


# Its ceilings: the broker's start, stop and restart (60 s each), the waits (30 + 15 + 30 + 15 + 30),
# the relay's stop (15) and the instance's removal (50). It takes about 20 s: the private broker
# started in 4-7 s (23 s once, with the machine's load at 14), stopped in 2 s, restarted in 4 s.
@pytest.mark.timeout(400)
def test_while_kafka_is_down_commands_succeed_and_events_follow_in_order(committed_room, private_kafka):
    tail = TopicTail(private_kafka.bootstrap, [namespace.topic(MessageSent.TOPIC)])
    publisher = WatchedPublisher()
    pending = OutboxEvent.objects.filter(published_at__isnull=True)
    try:
        with relay_in_a_thread(publisher, relay.PostgresCoordinator()):
            assert wait_for(all_published), "the room's own event is out before the broker stops"
            private_kafka.down()
            sent = send(committed_room, 5)
            rows = set(pending.values_list("id", flat=True))
            assert len(rows) == 5, "the commands succeeded, each with its event"
            assert wait_for(went_round_after_handing(publisher, rows), timeout=15), "the relay took the rows"
            assert set(pending.values_list("id", flat=True)) == rows, "nothing is lost or marked early"
            private_kafka.up()
            # The producer tries the broker again within librdkafka's reconnect backoff (10 s at most).
            assert wait_for(all_published, timeout=30), "the rows are published once the broker is back"
        # Marked rows were confirmed by the broker: the topic holds all of them, duplicates included.
        assert wait_for(lambda: finds_its_partitions(tail), timeout=15), "the tail reached the restarted broker"
        received = tail.read_to_end(in_room(committed_room))
    finally:
        tail.close()
    assert [e.payload["messageId"] for e in received] == sent, "each exactly once, in order"


@pytest.mark.timeout(180)  # its ceilings: 30 + 60 + 20 + 30 s
def test_a_relay_killed_mid_batch_resumes_without_losing_or_reordering(committed_room, tail, children):
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
    env = {**os.environ, "DATABASE_URL": database_url()}
    first = children.start("relay", manage("relay_outbox"), env)
    published = OutboxEvent.objects.filter(published_at__isnull=False)
    assert wait_for(lambda: published.exists(), timeout=30, interval=0.005)
    first.kill()
    first.wait()
    marked_at_kill = published.count()
    assert marked_at_kill < total, "the relay was killed mid-stream"

    second = children.start("relay", manage("relay_outbox"), env)
    assert wait_for(all_published, timeout=60)
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0, "SIGTERM stops the relay cleanly"

    # Every row is marked, so confirmed: the topic holds all that both relays published.
    received = tail.read_to_end(in_room(committed_room), timeout=30)
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


class OneTry(threading.Event):
    """A stop for acquire() that lets it try once: it is set as soon as acquire() waits to retry."""

    def wait(self, timeout=None):
        self.set()
        return True


def test_only_one_relay_is_active_per_database(transactional_db):
    active, standby = relay.PostgresCoordinator(), relay.PostgresCoordinator()
    assert active.acquire(threading.Event())
    assert standby.acquire(OneTry()) is False
    active.release()
    assert standby.acquire(threading.Event())
    standby.release()


@contextlib.contextmanager
def relay_in_a_thread(publisher, coordinator):
    """The relay on a thread of its own, stopped on leaving; yields the thread."""
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_relay, args=(stop, publisher, coordinator), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        # Wake it from an idle wait to see the stop (a test may have made that wait long).
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {outbox.NOTIFY_CHANNEL}")
        outbox.local_wakeup.set()
        thread.join(15)
    assert not thread.is_alive(), "the relay stops when asked"


@contextlib.contextmanager
def relay_on_the_in_process_bus(coordinator):
    """A relay in a thread, publishing to the in-process bus; yields what the bus delivered, and the thread."""
    received = []
    bus.subscribe("test-role", [namespace.topic(MessageSent.TOPIC)], lambda topic, value: received.append(value))
    try:
        with relay_in_a_thread(relay.InProcessPublisher(), coordinator) as thread:
            yield received, thread
    finally:
        bus.unsubscribe("test-role")


def test_in_process_bus_delivers_the_outbox_in_embedded_mode(committed_room):
    from infrastructure.messaging.events import decode

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


def test_the_relays_lock_connection_follows_a_failover_list_of_hosts(db):
    from pathlib import Path

    from infrastructure.env import database_from_url
    from infrastructure.testing.private_services import failover_url

    coordinator = relay.PostgresCoordinator(database_from_url(failover_url(), Path("/unused")))
    try:
        assert coordinator._conn.info.port == int(connection.settings_dict["PORT"])
        assert coordinator.acquire(threading.Event())
    finally:
        coordinator.release()

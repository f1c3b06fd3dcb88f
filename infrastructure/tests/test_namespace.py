"""Two deployments on the same Kafka and Redis, each under its own namespace, never see each other."""

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from accounts import throttle
from chat_command import relay
from chat_command.events import MessageSent
from chat_command.models import OutboxEvent
from chat_command.services import NewMessage, NewRoom, do_create_room, do_send_message
from chat_query import cache, projector
from infrastructure import backends, namespace
from infrastructure.env import Env
from infrastructure.http.errors import TooManyRequests
from infrastructure.messaging import consumers
from infrastructure.messaging.events import Envelope, registered_types
from infrastructure.messaging.topics import ensure_topics
from infrastructure.testing.waiting import wait_for
from realtime import presence, typing_indicator

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spaces(settings, unique):
    """Two namespaces of this test's own, dropped afterwards; the test switches between them."""
    first, second = f"nsa-{unique}", f"nsb-{unique}"
    yield first, second
    for space in (first, second):
        namespace.drop(space)


def enter(settings, space: str) -> None:
    """Act as the deployment named `space`, with the consumer groups its settings would give it."""
    settings.CHAT_NAMESPACE = space
    settings.KAFKA_GROUP_PREFIX = f"{space}.chat" if space else "chat"


def settings_under(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load the settings in a new process with these variables; print the namespaced ones."""
    script = (
        "import django, json; django.setup(); from django.conf import settings as s;"
        "print(json.dumps([s.CHAT_NAMESPACE, s.KAFKA_GROUP_PREFIX, s.CHANNEL_LAYERS['default']['CONFIG']['prefix']]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CHAT_NAMESPACE", "KAFKA_GROUP_PREFIX")}
    env.update(environment, DJANGO_SETTINGS_MODULE="chatproject.settings")
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


# --- Names -------------------------------------------------------------------------------


def test_the_empty_namespace_keeps_the_plain_names(settings, redis_url):
    enter(settings, "")
    assert namespace.topic(MessageSent.TOPIC) == "chat-message-sent"
    assert namespace.key("presence:7") == "presence:7"
    loaded = settings_under({"CHAT_NAMESPACE": ""})
    assert json.loads(loaded.stdout) == ["", "chat", "chat"], loaded.stderr


def test_a_namespace_heads_topics_keys_consumer_groups_and_channel_names(settings, redis_url):
    enter(settings, "blue-7")
    assert namespace.topic(MessageSent.TOPIC) == "blue-7.chat-message-sent"
    assert namespace.key("presence:7") == "blue-7:presence:7"
    loaded = settings_under({"CHAT_NAMESPACE": "blue-7"})
    assert json.loads(loaded.stdout) == ["blue-7", "blue-7.chat", "blue-7:chat"], loaded.stderr


@pytest.mark.parametrize("bad", ["Blue", "a.b", "a:b", "-lead", "a_b", "x" * 41, "presence", "readcache"])
def test_it_refuses_a_namespace_that_is_not_a_plain_lowercase_name(bad):
    with pytest.raises(ImproperlyConfigured, match="CHAT_NAMESPACE"):
        Env({"CHAT_NAMESPACE": bad}).namespace("CHAT_NAMESPACE")
    with pytest.raises(ValueError, match="a namespace is"):
        namespace.drop(bad)


def test_a_process_with_an_invalid_namespace_stops_at_start():
    loaded = settings_under({"CHAT_NAMESPACE": "Not Valid"})
    assert loaded.returncode != 0
    assert "CHAT_NAMESPACE" in loaded.stderr


# --- Kafka -------------------------------------------------------------------------------


class Recorder:
    """A consumer role that only notes the event ids it was handed."""

    name, batch_size = "recorder", 500
    topics: tuple[str, ...] = (MessageSent.TOPIC,)

    def __init__(self) -> None:
        self.seen: list[str] = []

    def handle(self, envelopes):
        self.seen.extend(e.event_id for e in envelopes)
        return []

    def done(self, envelopes):
        pass

    def healthy(self):
        return True


@contextlib.contextmanager
def recording(settings, space: str, role: Recorder | None = None):
    """A Recorder (or `role`) consuming under `space`, assigned its partitions before this yields."""
    enter(settings, space)
    role, stop = role or Recorder(), threading.Event()
    runner = consumers.KafkaRunner(role, stop)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: runner.status.assigned, 60), f"the recorder under {space} was assigned"
        yield role
    finally:
        stop.set()
        thread.join(30)


@contextlib.contextmanager
def relaying():
    stop = threading.Event()
    thread = threading.Thread(
        target=relay.run_relay, args=(stop, relay.KafkaPublisher(), relay.PostgresCoordinator()), daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(15)


def published_under(settings, space: str, room) -> str:
    """Send a message as the deployment `space`, relay it, and return its event id."""
    enter(settings, space)
    message = do_send_message(1, NewMessage(room.room_id, f"under {space}", None))
    row = OutboxEvent.objects.get(type="MessageSent", payload__messageId=message.message_id)
    assert row.topic == MessageSent.TOPIC, "the outbox keeps the logical topic"
    with relaying():
        assert wait_for(lambda: OutboxEvent.objects.filter(id=row.id, published_at__isnull=False).exists())
    return str(row.event_id)


@pytest.fixture
def committed_room(transactional_db):
    from accounts.seed import seed_customers

    seed_customers()
    return do_create_room(1, NewRoom("Namespaced room", [2]))


def test_an_event_relayed_under_one_namespace_reaches_only_that_namespaces_roles(
    settings, spaces, kafka_bootstrap, committed_room
):
    first, second = spaces
    settings.KAFKA_AUTO_OFFSET_RESET = "latest"
    with relaying():  # the room's own event goes out before anyone listens
        assert wait_for(lambda: not OutboxEvent.objects.filter(published_at__isnull=True).exists())
    with recording(settings, first) as in_first, recording(settings, second) as in_second:
        # One room, so without namespaces both events would share a partition, in this order.
        sent_first = published_under(settings, first, committed_room)
        sent_second = published_under(settings, second, committed_room)
        assert wait_for(lambda: sent_second in in_second.seen), "the second namespace's role got its event"
        assert wait_for(lambda: sent_first in in_first.seen), "the first namespace's role got its event"
    assert in_second.seen == [sent_second]
    assert in_first.seen == [sent_first]


def test_each_namespace_has_the_whole_set_of_topics_of_its_own(settings, spaces, kafka_bootstrap):
    first, _ = spaces
    enter(settings, first)
    ensure_topics()
    logical = {cls.TOPIC for cls in registered_types().values()} | {consumers.DEAD_LETTER_TOPIC}
    existing = set(backends.kafka_admin().list_topics(timeout=10).topics)
    assert {f"{first}.{name}" for name in logical} <= existing


def test_the_topics_of_a_new_namespace_can_be_used_as_soon_as_they_are_ensured(settings, spaces, kafka_bootstrap):
    """A fresh namespace creates its topics on first use; the broker leads them a moment later."""
    first, _ = spaces
    enter(settings, first)
    ensure_topics()
    reader = Consumer(backends.kafka_config(**{"group.id": f"{first}.reader"}))
    try:
        for name in (MessageSent.TOPIC, consumers.DEAD_LETTER_TOPIC):
            for partition in range(settings.KAFKA_TOPIC_PARTITIONS):
                assert reader.get_watermark_offsets(TopicPartition(namespace.topic(name), partition), timeout=10)
    finally:
        reader.close()


# --- Redis -------------------------------------------------------------------------------


def test_login_failures_counted_in_one_namespace_do_not_lock_out_another(settings, spaces, redis_url, unique):
    first, second = spaces
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    username, address = f"someone-{unique}", f"10.{unique[:2]}.0.1"
    enter(settings, first)
    for _ in range(2):
        throttle.check_and_count_login_attempt(username, address)
    with pytest.raises(TooManyRequests):
        throttle.check_and_count_login_attempt(username, address)
    enter(settings, second)
    throttle.check_and_count_login_attempt(username, address)


def test_the_read_cache_of_one_namespace_is_invisible_in_another(settings, spaces, redis_url, unique):
    first, second = spaces
    generation, view = f"t{unique}", cache.ViewEntry(1, "2026-11-25T10:00:00.000Z", "{}")
    enter(settings, first)
    cache.put_page(generation, 5, [(3, 0), (2, 0), (1, 0)], ["c", "b", "a"])
    assert cache.put_views(generation, [(5, view)])
    enter(settings, second)
    assert cache.page(generation, 5, [(3, 0), (2, 0), (1, 0)]) is None
    assert cache.views(generation, [5]) == {}
    assert cache.forget_views()
    enter(settings, first)
    assert cache.page(generation, 5, [(3, 0), (2, 0), (1, 0)]) == ["c", "b", "a"]
    assert cache.views(generation, [5]) == {5: view.stored}, "the other namespace's epoch orphans nothing here"


def test_presence_and_typing_of_one_namespace_are_invisible_in_another(settings, spaces, redis_url, unique):
    first, second = spaces
    customer, room_id = 900_000_000 + int(unique[:6], 16), 900_000_000 + int(unique[4:10], 16)
    enter(settings, first)
    assert presence.touch(customer, f"conn-{unique}")
    assert typing_indicator.start(room_id, customer)
    enter(settings, second)
    assert presence.online_ids([customer]) == set()
    assert typing_indicator.start(room_id, customer), "nobody types in this room here yet"
    assert customer not in presence.sweep(now=10**10)
    enter(settings, first)
    assert presence.online_ids([customer]) == {customer}
    assert not typing_indicator.start(room_id, customer), "still typing here"


def test_what_a_projector_remembers_and_a_roles_status_stay_in_their_namespace(settings, spaces, redis_url, unique):
    first, second = spaces
    sent = MessageSent(roomId=1, messageId=1, senderId=1, senderFullName="One", content="x", sentAt="2026-01-01")
    envelope = Envelope.wrap(sent)
    enter(settings, first)
    projector._remember([envelope])
    consumers.Status(f"group-{unique}").save()
    enter(settings, second)
    assert projector._remembered([envelope]) == [False]
    assert consumers.read_status(f"group-{unique}") is None
    enter(settings, first)
    assert projector._remembered([envelope]) == [True]
    assert consumers.read_status(f"group-{unique}") is not None


# --- Dropping a namespace ------------------------------------------------------------------


def commit_a_group(group: str, topic: str) -> None:
    """Make `group` exist on the broker, with an offset committed on `topic`."""
    admin = backends.kafka_admin()
    futures = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0)])])
    committed = futures[group].result(timeout=30)
    assert [tp.error for tp in committed.topic_partitions] == [None], f"{group} committed its offset"


def groups_on_the_broker() -> set[str]:
    return {g.group_id for g in backends.kafka_admin().list_consumer_groups(request_timeout=10).result().valid}


def topics_on_the_broker() -> set[str]:
    return set(backends.kafka_admin().list_topics(timeout=10).topics)


def test_dropping_a_namespace_deletes_its_topics_groups_and_keys_and_nothing_else(
    settings, spaces, kafka_bootstrap, redis_url, unique
):
    first, second = spaces
    client = backends.redis_client()
    for space in spaces:
        enter(settings, space)
        ensure_topics()
        commit_a_group(f"{settings.KAFKA_GROUP_PREFIX}-projector", namespace.topic(MessageSent.TOPIC))
        client.set(namespace.key(f"probe:{unique}"), "1")
    enter(settings, "")
    plain = f"probe:{unique}"
    client.set(plain, "1", ex=60)

    dropped = namespace.drop(first)

    # Every topic an event travels on (several kinds may share one), and the dead letters.
    assert dropped["topics"] >= len({kind.TOPIC for kind in registered_types().values()}) + 1
    assert dropped["groups"] == 1
    assert dropped["keys"] == 1
    assert wait_for(lambda: not any(t.startswith(f"{first}.") for t in topics_on_the_broker()), 30)
    assert f"{first}.chat-projector" not in groups_on_the_broker()
    assert client.get(f"{first}:probe:{unique}") is None
    assert f"{second}.chat-message-sent" in topics_on_the_broker()
    assert f"{second}.chat-projector" in groups_on_the_broker()
    assert client.get(f"{second}:probe:{unique}") == "1"
    assert client.get(plain) == "1", "the plain names are no namespace's"


def test_dropping_a_namespace_on_a_redis_cluster_deletes_its_keys_from_every_primary(
    backends_on_private_redis_cluster, unique
):
    import redis
    from django.test import override_settings

    first, second = f"nsa-{unique}", f"nsb-{unique}"
    client = backends.redis_client()
    # Not the settings fixture: it would restore after the cluster's fixture has, and undo that.
    for space in (first, second):
        with override_settings(CHAT_NAMESPACE=space):
            # More than one SCAN batch of them, and some of each kind the project keeps.
            pipe = client.pipeline(transaction=False)
            for n in range(2500):
                pipe.set(namespace.key(f"probe:{n}"), "1")
            pipe.execute()
            presence.touch(7, f"conn-{unique}")
            typing_indicator.start(8, 7)
            cache.put_views("g", [(9, cache.ViewEntry(1, "2026-11-25T10:00:00.000Z", "{}"))])

    with override_settings(KAFKA_BOOTSTRAP_SERVERS=""):  # only Redis here
        dropped = namespace.drop(first)

    held = {}
    for node in backends_on_private_redis_cluster.primaries():
        direct = redis.Redis(port=node.port, decode_responses=True)
        held[node.port] = {space: len(direct.keys(f"{space}:*")) for space in (first, second)}
        direct.close()
    assert all(counts[second] for counts in held.values()), f"the keys spread over every primary: {held}"
    assert sum(counts[first] for counts in held.values()) == 0
    assert dropped["keys"] == sum(counts[second] for counts in held.values())


def test_it_refuses_to_drop_the_empty_namespace(redis_url):
    with pytest.raises(ValueError, match="empty namespace"):
        namespace.drop("")
    with pytest.raises(CommandError):
        call_command("drop_namespace", "")


def test_the_drop_namespace_command_says_what_it_deleted(settings, spaces, redis_url, kafka_bootstrap, capsys):
    first, _ = spaces
    enter(settings, first)
    backends.redis_client().set(namespace.key("probe"), "1")
    call_command("drop_namespace", first)
    assert "1 Redis keys" in capsys.readouterr().out
    assert backends.redis_client().get(namespace.key("probe")) is None

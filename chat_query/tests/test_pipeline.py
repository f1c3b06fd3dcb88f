"""The projector as a Kafka consumer group, end to end, against all the real services."""

import os
import signal
import threading
import time

import pytest
from confluent_kafka import Producer
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from accounts.seed import seed_customers
from chat_command import outbox, relay
from chat_command.events import MessageSent, ReadMarkerUpdated
from chat_command.models import OutboxEvent
from chat_command.services import NewMessage, NewRoom, ReadMarker, do_create_room, do_mark_read, do_send_message
from chat_query.projection import unread_status
from chat_query.projector import Projector, processed_key
from chat_query.store import active_generation, active_store
from chat_query.tests.helpers import rebuilt, state_of
from infrastructure import backends, namespace
from infrastructure.messaging import consumers
from infrastructure.messaging.events import Envelope, decode
from infrastructure.messaging.topics import ensure_topics
from infrastructure.testing.children import database_url, manage
from infrastructure.testing.kafka_tail import TopicTail
from infrastructure.testing.waiting import wait_for

pytestmark = pytest.mark.integration


def logged_events():
    return [
        decode(
            Envelope(str(r.event_id), r.type, r.version, "", r.payload)
            .to_bytes()
            .replace(b'"occurredAt":""', b'"occurredAt":"x"')
        )[1]
        for r in OutboxEvent.objects.order_by("id")
    ]


@pytest.fixture
def group_prefix(unique):
    # Under the run's own prefix (its namespace's), so dropping the namespace ends these groups too.
    prefix = f"{settings.KAFKA_GROUP_PREFIX}-{unique}"
    with override_settings(KAFKA_GROUP_PREFIX=prefix, KAFKA_AUTO_OFFSET_RESET="latest"):
        yield prefix


@pytest.fixture
def pipeline(kafka_bootstrap, transactional_db, group_prefix):
    """The relay and a projector group member, each on a thread of its own."""
    seed_customers()
    ensure_topics()
    stop = threading.Event()
    runner = consumers.KafkaRunner(Projector(), stop)
    threads = [
        threading.Thread(target=relay.run_relay, args=(stop, relay.KafkaPublisher(), relay.PostgresCoordinator())),
        threading.Thread(target=runner.run),
    ]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: runner.status.assigned, timeout=30), "the projector joined its group"
    yield runner
    stop.set()
    for thread in threads:
        thread.join(15)
    # One left running would go on publishing or projecting into the tests that follow.
    assert not any(thread.is_alive() for thread in threads), "the relay and the projector stop when asked"


def projected_message(message_id):
    return active_store().messages.find_one({"_id": message_id})


def view_settled_on(room_id, message_id):
    """The room's view shows the message and its derived flags (the last step of a batch)."""
    view = active_store().views.find_one({"_id": room_id}) or {}
    flags = view.get("unreadStatus") or {}
    participants = view.get("participantIds")  # absent while the message is projected before its room
    last = (view.get("lastMessage") or {}).get("messageId")
    # The flags are written just after the last message: settled means they match what it implies.
    return last == message_id and participants is not None and flags == unread_status(view)


def test_a_sent_message_flows_to_the_read_api_and_is_announced(pipeline, client, kafka_bootstrap):
    tail = TopicTail(kafka_bootstrap, [namespace.topic("room-updated")])
    room = do_create_room(1, NewRoom("Pipeline", [2]))
    from conftest import login

    login(client, "user1", "123")
    response = client.post(
        "/command/message", {"roomId": room.room_id, "content": "through kafka"}, content_type="application/json"
    )
    message_id = response.json()["data"]["messageId"]
    assert wait_for(lambda: projected_message(message_id) is not None, timeout=30)
    page = client.get(f"/query/message/roomId/{room.room_id}").json()["data"]
    assert page[0]["messageId"] == message_id
    assert page[0]["content"] == "through kafka"

    def carries_the_message(envelope):
        last = envelope.payload["lastMessage"]
        return envelope.payload["roomId"] == room.room_id and last is not None and last["messageId"] == message_id

    announced = tail.collect(carries_the_message, 1, timeout=30)
    assert announced, "the room's new state was announced on room-updated"
    assert announced[-1].payload["unreadStatus"] == {"2": True, "1": False}
    tail.close()


def test_edits_reactions_and_deletes_flow_through_kafka_to_pages_the_room_list_and_search(pipeline, user1):
    from chat_command.services import do_delete_message, do_edit_message, do_react

    room = do_create_room(1, NewRoom("Changes through Kafka", [2]))
    first = do_send_message(1, NewMessage(room.room_id, "first words", None)).message_id
    last = do_send_message(1, NewMessage(room.room_id, "last words", None)).message_id
    do_edit_message(1, last, "last words, edited")
    do_react(2, first, "🎉", present=True)
    do_delete_message(1, first)

    def settled():
        stored = {m: projected_message(m) or {} for m in (first, last)}
        view = active_store().views.find_one({"_id": room.room_id}) or {}
        return (
            stored[first].get("deleted") is True
            and stored[last].get("content") == "last words, edited"
            and (view.get("lastMessage") or {}).get("content") == "last words, edited"
        )

    # The runner counts a batch once it wrote the store and then the read cache the room list
    # and pages come from: a store that shows every update does not yet mean the cache does.
    events = 6  # the room, two messages, the edit, the reaction, the deletion
    assert wait_for(lambda: pipeline.status.processed == events, timeout=30), "the projector handled every event"
    assert settled(), "the projector applied every update"
    page = {m["messageId"]: m for m in user1.get(f"/query/message/roomId/{room.room_id}").json()["data"]}
    assert (page[first]["deleted"], page[first]["content"], page[first]["reactions"]) == (True, "", [])
    assert (page[last]["content"], page[last]["editedAt"] is not None) == ("last words, edited", True)
    rooms = {r["roomId"]: r for r in user1.get("/query/rooms").json()["data"]}
    assert rooms[room.room_id]["lastMessage"]["content"] == "last words, edited"
    found = user1.get("/query/search", {"q": "words"}).json()["data"]
    assert [m["messageId"] for m in found if m["roomId"] == room.room_id] == [last]


def test_membership_changes_flow_through_kafka_to_the_room_list_the_pages_and_the_announcements(
    pipeline, user1, kafka_bootstrap
):
    from chat_command.models import Message
    from chat_command.services import do_add_participants, do_remove_participant, do_rename_room

    tail = TopicTail(kafka_bootstrap, [namespace.topic("room-updated")])
    room = do_create_room(1, NewRoom("Members through Kafka", [2]))
    do_send_message(2, NewMessage(room.room_id, "before the changes", None))
    do_add_participants(1, room.room_id, [3])
    do_rename_room(3, room.room_id, "Renamed through Kafka")
    do_remove_participant(1, room.room_id, 2)
    notes = list(Message.objects.filter(room_id=room.room_id, kind="system").order_by("-message_id"))
    # 3 renamed the room (sending is reading), then missed only the removal's note.
    final = {"participantIds": [1, 3], "unreadCount": {"1": 0, "3": 1}, "roomName": "Renamed through Kafka"}

    def shows_the_final_room(envelope):
        payload = envelope.payload
        return payload["roomId"] == room.room_id and all(payload.get(k) == v for k, v in final.items())

    assert tail.collect(shows_the_final_room, 1, timeout=30), "the room as it now is went to its members"
    [removed] = tail.collect(lambda e: e.type == "RoomRemoved" and e.payload["roomId"] == room.room_id, 1)
    assert removed.payload["customerIds"] == [2]
    tail.close()
    view = {r["roomId"]: r for r in user1.get("/query/rooms").json()["data"]}[room.room_id]
    assert {k: view[k] for k in final} == final
    assert view["unreadStatus"] == {"1": False, "3": True}
    assert view["lastMessage"]["messageId"] == notes[0].message_id
    assert wait_for(lambda: projected_message(notes[0].message_id) is not None, timeout=30)
    page = user1.get(f"/query/message/roomId/{room.room_id}").json()["data"]
    assert [m["type"] for m in page] == ["system", "system", "system", "user"]
    assert [m["system"]["action"] for m in page[:3]] == ["removed", "renamed", "added"]
    assert page[0]["system"] == {
        "action": "removed",
        "actorId": 1,
        "customerIds": [2],
        "roomName": "Renamed through Kafka",
    }
    assert projected_message(notes[0].message_id)["type"] == "system", "the page came from the read store"


def test_a_redelivered_event_changes_nothing_and_is_not_announced_again(pipeline, kafka_bootstrap):
    tail = TopicTail(kafka_bootstrap, [namespace.topic("room-updated")])
    room = do_create_room(1, NewRoom("Twice", [2]))
    sent = do_send_message(1, NewMessage(room.room_id, "once", None))
    row = OutboxEvent.objects.get(type="MessageSent", payload__messageId=sent.message_id)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    value = Envelope(str(row.event_id), row.type, row.version, "2026-01-01T00:00:00.000Z", row.payload).to_bytes()
    # The runner counts a batch after writing it to the store and publishing what it derived. It
    # started at the end of the topics, so it counts the creation and the message, then the
    # redelivery: once it counted that, any announcement of it is in the topic, and reading the
    # topic to its end sees it. The state before is read once the message is counted: a view
    # that shows the message does not yet mean the rest of its batch is written.
    assert wait_for(lambda: pipeline.status.processed == 2, timeout=15), "the creation and the message were handled"
    assert view_settled_on(room.room_id, sent.message_id)
    before = state_of(active_store(), [room.room_id])
    producer.produce(namespace.topic(MessageSent.TOPIC), key=str(room.room_id), value=value)
    assert producer.flush(5) == 0
    assert wait_for(lambda: pipeline.status.processed == 3, timeout=15), "the redelivery was handled"
    announced = tail.read_to_end(lambda e: e.payload["roomId"] == room.room_id, timeout=10)
    assert 1 <= len(announced) <= 2, "creation and the message at most once each; the redelivery adds nothing"
    assert sum(1 for e in announced if (e.payload["lastMessage"] or {}).get("messageId") == sent.message_id) == 1
    assert state_of(active_store(), [room.room_id]) == before
    tail.close()


def test_poison_events_go_to_the_dead_letter_topic_and_the_next_event_is_processed(pipeline, kafka_bootstrap, caplog):
    dead = TopicTail(kafka_bootstrap, [namespace.topic(consumers.DEAD_LETTER_TOPIC)])
    room = do_create_room(1, NewRoom("Poisoned", [2]))
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(namespace.topic(MessageSent.TOPIC), key=b"x", value=b"this is not an event")
    broken = Envelope.wrap(room_created_with_bad_participants(room.room_id + 10_000_000)).to_bytes()
    producer.produce(namespace.topic("chat-room-created"), key=str(room.room_id).encode(), value=broken)
    producer.flush(10)
    sent = do_send_message(1, NewMessage(room.room_id, "after the poison", None))
    assert wait_for(lambda: projected_message(sent.message_id) is not None, timeout=30)
    records = []
    deadline = time.monotonic() + 30
    while len(records) < 2 and time.monotonic() < deadline:
        message = dead.consumer.poll(0.5)
        if message is not None and not message.error():
            records.append(message)
    assert {m.value() for m in records} == {b"this is not an event", broken}
    assert all(dict(m.headers())["error"] for m in records)
    assert any("dead-letter" in r.message for r in caplog.records)
    dead.close()


def room_created_with_bad_participants(room_id):
    from chat_command.events import RoomCreated

    return RoomCreated(
        roomId=room_id, roomName="bad", createdBy=1, createdAt="2026-01-01T00:00:00.000Z", participants=[5]
    )


def _projector(children, group_prefix):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MONGO_DB_NAME": settings.MONGO_DB_NAME,
        "KAFKA_GROUP_PREFIX": group_prefix,
        "KAFKA_AUTO_OFFSET_RESET": "latest",
    }
    return children.start("projector", manage("consume_events", "projector"), env)


def member_assigned(group, since):
    """Whether a member of the group was given its partitions after `since` (a time.time())."""
    status = consumers.read_status(group) or {}
    return bool(status.get("assigned")) and status.get("updated", 0) > since


# Ceilings: joining 30 s, the takeover 45 s (a killed member keeps its partitions for
# session.timeout.ms, 10 s, before the group rebalances), projecting the rest 45 s.
def ranges(numbers: list[int]) -> str:
    """Consecutive runs of sorted numbers, as "a-b, c"."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in runs)


def where_the_missing_went(room_id: int, sent: list[int], messages, tail: TopicTail) -> str:
    """Which of the room's messages the read store lacks, and how far each got: Kafka, the
    projector's processed-event memory."""
    present = {document["_id"] for document in messages.find({"roomId": room_id}, {"_id": 1})}
    missing = [m for m in sent if m not in present]
    published = {
        e.payload["messageId"]: e.event_id
        for e in tail.read_to_end(lambda e: e.type == MessageSent.TYPE and e.payload["roomId"] == room_id)
    }
    in_kafka = [m for m in missing if m in published]
    remembered = backends.redis_client().mget([processed_key(published[m]) for m in in_kafka]) if in_kafka else []
    return (
        f"{len(missing)} missing ({ranges(missing)[:300]}); {len(in_kafka)} of them in Kafka, "
        f"{sum(1 for r in remembered if r)} of those remembered as projected"
    )


@pytest.mark.timeout(240)
def test_a_projector_killed_mid_stream_resumes_and_matches_a_rebuild(
    kafka_bootstrap, transactional_db, group_prefix, running_relay, children, request
):
    seed_customers()
    tail = TopicTail(kafka_bootstrap, [namespace.topic(MessageSent.TOPIC)])
    request.addfinalizer(tail.close)
    first = _projector(children, group_prefix)
    group = f"{group_prefix}-projector"
    assert wait_for(lambda: member_assigned(group, since=0), timeout=30), "the first projector joined its group"
    room = do_create_room(1, NewRoom("Killed", [2, 3]))
    sent = list(range(10_000_001, 10_005_001))
    with transaction.atomic():
        outbox.record(
            *(
                MessageSent(
                    roomId=room.room_id,
                    messageId=m,
                    senderId=1 + m % 3,
                    senderFullName="Bulk",
                    content=f"m{m}",
                    sentAt="2026-11-25T10:00:00.000Z",
                )
                for m in sent
            ),
            ReadMarkerUpdated(roomId=room.room_id, customerId=2, lastReadMessageId=sent[2500]),
        )
    messages = active_store().messages
    # Wait for this test's own ids: a room count that overshot would never equal len(sent), and
    # the wait would end only at the test's timeout. The room's total is checked after.
    projected = {"roomId": room.room_id, "_id": {"$in": sent}}
    assert wait_for(lambda: messages.find_one(projected) is not None, timeout=30, interval=0.005)
    first.kill()
    first.wait()
    killed_at = time.time()
    assert messages.count_documents(projected) < len(sent), "killed mid-stream"

    second = _projector(children, group_prefix)
    taken_over = wait_for(lambda: member_assigned(group, since=killed_at), timeout=45)
    assert taken_over, "the second projector took over the partitions once the killed member's session ended"
    all_projected = wait_for(lambda: messages.count_documents(projected) == len(sent), timeout=45, interval=0.2)
    assert all_projected, (
        f"projected {messages.count_documents(projected)} of {len(sent)}: "
        f"{where_the_missing_went(room.room_id, sent, messages, tail)}; status {consumers.read_status(group)}"
    )
    assert messages.count_documents({"roomId": room.room_id}) == len(sent), "nothing else landed in the room"
    assert wait_for(lambda: state_of(active_store(), [room.room_id]) == rebuilt(logged_events()), timeout=20)
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0, "SIGTERM stops the projector cleanly"


def test_rebuild_switches_readers_to_a_fresh_generation_equal_to_the_log(user1, room):
    from chat_command.services import do_delete_message, do_edit_message, do_react
    from chat_query.rebuild import replay

    sent = [do_send_message(1, NewMessage(room.room_id, f"m{n}", None)).message_id for n in range(30)]
    do_mark_read(2, ReadMarker(room.room_id, sent[-1]))
    replay(active_store(), progress=False)
    # Updates logged after the replay, so the rebuild alone must bring them: an edit of the last
    # message, reactions in an earlier chunk's message, a delete.
    do_edit_message(1, sent[-1], "the last, edited")
    do_react(2, sent[0], "👍", present=True)
    do_delete_message(1, sent[1])
    old = active_generation(fresh=True)
    old_views = active_store(fresh=True).views
    assert old_views.count_documents({}) > 0, "the old generation holds the room"
    call_command("rebuild_projections", no_progress=True)
    new = active_generation(fresh=True)
    assert new != old
    assert state_of(active_store(fresh=True), [room.room_id]) == rebuilt(logged_events())
    assert [m["messageId"] for m in user1.get(f"/query/message/roomId/{room.room_id}").json()["data"]] == sent[::-1][
        :20
    ]
    stored = {m: active_store().messages.find_one({"_id": m}) for m in sent[:2] + sent[-1:]}
    assert stored[sent[-1]]["content"] == "the last, edited"
    assert stored[sent[0]]["reactions"] == [{"emoji": "👍", "customerIds": [2]}]
    assert stored[sent[1]]["deleted"] is True
    assert active_store().views.find_one({"_id": room.room_id})["lastMessage"]["content"] == "the last, edited"
    assert old_views.name not in active_store().db.list_collection_names(), "the old generation was dropped"


def test_the_projector_keeps_projecting_while_redis_is_down(
    transactional_db, backends_on_private_redis, unique, caplog
):
    """Redis only remembers which events were announced; losing it must not lose a projection."""
    from chat_query.tests.helpers import message

    projector = Projector()
    room_id, message_id = 900_000_000 + int(unique[:6], 16), 9 * 10**12 + int(unique[:8], 16)
    envelope = Envelope.wrap(message(room_id, message_id, sender=1))
    backends_on_private_redis.stop()
    projector.handle([envelope])
    projector.done([envelope])
    assert any("without the processed-event memory" in r.message for r in caplog.records), "it ran without Redis"
    assert active_store().messages.find_one({"_id": message_id})["roomId"] == room_id


def test_a_redelivered_batch_announces_nothing_again(db, each_redis, unique):
    from redis.crc import key_slot

    from chat_query.tests.helpers import message, room_created

    projector = Projector()
    room_id, first_id = 900_000_000 + int(unique[:6], 16), 9 * 10**12 + int(unique[:8], 16) * 1000
    batch = [Envelope.wrap(room_created(room_id, [2, 1]))]
    batch += [Envelope.wrap(message(room_id, first_id + n, sender=1)) for n in range(200)]
    assert projector.handle(batch), "the first delivery announces the room"
    assert len({key_slot(processed_key(e.event_id).encode()) for e in batch}) > 10, "their keys span many slots"
    projector.done(batch)
    assert projector.handle(batch) == [], "every event of the batch is remembered"
    later = Envelope.wrap(message(room_id, first_id + 200, sender=2))
    assert projector.handle([batch[5], later]), "a new event in a redelivered batch is announced"


def test_a_rebuild_reproduces_the_views_and_counts_of_rooms_whose_members_changed(user1, room):
    from chat_command import selectors as truth
    from chat_command.services import do_add_participants, do_leave_room, do_remove_participant, do_rename_room
    from chat_query.projection import view_json
    from chat_query.rebuild import replay

    sent = [do_send_message(1 + n % 2, NewMessage(room.room_id, f"m{n}", None)).message_id for n in range(5)]
    do_add_participants(2, room.room_id, [3])
    do_mark_read(3, ReadMarker(room.room_id, sent[0]))
    do_rename_room(3, room.room_id, "Before the rebuild")
    do_send_message(1, NewMessage(room.room_id, "after the rename", None))
    do_remove_participant(1, room.room_id, 2)
    do_leave_room(3, room.room_id)
    do_add_participants(1, room.room_id, [2])
    do_mark_read(2, ReadMarker(room.room_id, sent[-1]))  # older than the note that added them: no move
    do_send_message(1, NewMessage(room.room_id, "welcome back", None))
    replay(active_store(), progress=False)
    projected = active_store().views.find_one({"_id": room.room_id})
    call_command("rebuild_projections", no_progress=True)
    rebuilt_view = active_store(fresh=True).views.find_one({"_id": room.room_id})
    assert state_of(active_store(), [room.room_id]) == rebuilt(logged_events())
    assert view_json(rebuilt_view) == view_json(projected)
    [from_truth] = truth.room_documents([room.room_id])
    assert view_json(rebuilt_view)["unreadCount"] == view_json(from_truth)["unreadCount"] == {"1": 0, "2": 1}
    assert rebuilt_view["participantIds"] == [1, 2]

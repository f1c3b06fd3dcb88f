"""Projection rules against the real MongoDB-wire server: idempotent and order-independent."""

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_command.events import ADDED, LEFT, REMOVED, RENAMED
from chat_query import projection
from chat_query.events import ReadStatusUpdated, RoomUpdated
from chat_query.store import ReadStore
from chat_query.tests.helpers import RoomLog, marker, message, rebuilt, room_created, room_id, state_of, updated

pytestmark = pytest.mark.integration


@pytest.fixture
def store(scratch_mongo_db):
    store = ReadStore(scratch_mongo_db)
    store.ensure_indexes()
    return store


def test_room_created_matches_a_rebuild_and_nobody_is_unread(store):
    r = room_id()
    events = [room_created(r, [2, 3, 1])]
    announced = projection.apply(store, events)
    assert state_of(store, [r]) == rebuilt(events)
    view = store.views.find_one({"_id": r})
    assert view["unreadStatus"] == {"2": False, "3": False, "1": False}
    assert [type(e) for e in announced] == [RoomUpdated]
    assert announced[0].participantIds == [2, 3, 1]


def test_message_sent_matches_a_rebuild_and_marks_everyone_but_the_sender_unread(store):
    r = room_id()
    events = [room_created(r, [2, 3, 1]), message(r, 10, sender=1)]
    projection.apply(store, events[:1])
    announced = projection.apply(store, events[1:])
    assert state_of(store, [r]) == rebuilt(events)
    assert store.views.find_one({"_id": r})["unreadStatus"] == {"2": True, "3": True, "1": False}
    assert announced[0].lastMessage["messageId"] == 10
    assert announced[0].lastMessage["sentAt"] == "2026-11-25T10:00:01.000Z"
    assert store.messages.find_one({"_id": 10})["senderFullName"] == "Person 1"


def test_read_marker_matches_a_rebuild_and_clears_unread_only_at_the_last_message(store):
    r = room_id()
    events = [room_created(r, [2, 1]), message(r, 10, 1, seq=1), message(r, 11, 1, seq=2), marker(r, 2, 10, seq=1)]
    projection.apply(store, events[:3])
    room, status = projection.apply(store, events[3:])
    assert state_of(store, [r]) == rebuilt(events)
    assert store.views.find_one({"_id": r})["unreadStatus"]["2"] is True, "reading an older message keeps unread"
    assert (room.unreadCount, status) == ({"2": 1, "1": 0}, ReadStatusUpdated(roomId=r, customerId=2, isUnread=True))
    room, status = projection.apply(store, [marker(r, 2, 11, seq=2)])
    assert (room.unreadCount, status) == ({"2": 0, "1": 0}, ReadStatusUpdated(roomId=r, customerId=2, isUnread=False))
    assert store.markers.find_one({"roomId": r, "customerId": 2})["lastReadMessageId"] == 11


def test_markers_never_move_backwards(store):
    r = room_id()
    projection.apply(store, [room_created(r, [2, 1]), message(r, 10, 1), message(r, 11, 1), marker(r, 2, 11)])
    projection.apply(store, [marker(r, 2, 10)])
    assert store.markers.find_one({"roomId": r, "customerId": 2})["lastReadMessageId"] == 11
    assert store.views.find_one({"_id": r})["unreadStatus"]["2"] is False


def test_a_read_marker_before_its_message_and_a_message_before_its_room_converge(store):
    r = room_id()
    events = [room_created(r, [2, 1]), message(r, 10, 1), marker(r, 2, 10)]
    for event in reversed(events):
        projection.apply(store, [event])
    assert state_of(store, [r]) == rebuilt(events)
    assert store.views.find_one({"_id": r})["unreadStatus"] == {"2": False, "1": False}


def test_reapplying_a_batch_changes_nothing(store):
    r = room_id()
    events = [room_created(r, [2, 1]), message(r, 10, 1), marker(r, 2, 10)]
    projection.apply(store, events)
    before = state_of(store, [r])
    projection.apply(store, events)
    projection.apply(store, list(reversed(events)))
    assert state_of(store, [r]) == before


def test_a_room_is_not_announced_before_it_exists(store):
    r = room_id()
    assert projection.apply(store, [message(r, 10, 1), marker(r, 2, 10)]) == []
    announced = projection.apply(store, [room_created(r, [2, 1])])
    assert [type(e) for e in announced] == [RoomUpdated]
    assert announced[0].lastMessage["messageId"] == 10, "the late room carries what already happened"


def test_an_older_message_arriving_late_announces_nothing(store):
    r = room_id()
    projection.apply(store, [room_created(r, [2, 1]), message(r, 11, 1)])
    assert projection.apply(store, [message(r, 10, 2)]) == []
    assert store.views.find_one({"_id": r})["lastMessage"]["messageId"] == 11
    assert store.messages.find_one({"_id": 10}) is not None


def test_a_delete_wins_over_an_edit_delivered_after_it(store):
    r = room_id()
    sent = message(r, 10, 1)
    projection.apply(store, [room_created(r, [2, 1]), sent, updated(sent, 2, "deleted")])
    projection.apply(store, [updated(sent, 1, "edited")])
    stored = store.messages.find_one({"_id": 10})
    assert (stored["deleted"], stored["content"], stored["rev"]) == (True, "", 2)
    assert store.views.find_one({"_id": r})["lastMessage"]["content"] == ""


def test_the_room_list_follows_edits_of_its_last_message_and_announces_them(store):
    r = room_id()
    older, last = message(r, 10, 1), message(r, 11, 2)
    projection.apply(store, [room_created(r, [2, 1]), older, last])
    assert projection.apply(store, [updated(older, 1, "edited", content="not the last")]) == []
    [announced] = projection.apply(store, [updated(last, 1, "edited", content="the last, edited")])
    assert isinstance(announced, RoomUpdated)
    assert announced.lastMessage == {
        "messageId": 11,
        "senderId": 2,
        "content": "the last, edited",
        "sentAt": last.sentAt,
        "type": "user",
    }
    assert store.views.find_one({"_id": r})["lastMessage"]["content"] == "the last, edited"


def test_an_edit_projected_before_its_message_is_kept_when_the_message_arrives(store):
    r = room_id()
    sent = message(r, 10, 1)
    projection.apply(store, [room_created(r, [2, 1]), updated(sent, 1, "edited", content="edited first")])
    [announced] = projection.apply(store, [sent])
    assert store.messages.find_one({"_id": 10})["content"] == "edited first"
    assert announced.lastMessage["content"] == "edited first"
    assert store.views.find_one({"_id": r})["lastMessage"]["content"] == "edited first"


def fresh_ids(event, r):
    """The same event in room `r` (message ids moved into a range of that room's own)."""
    changes = {"roomId": r}
    if hasattr(event, "messageId"):
        changes["messageId"] = r * 100 + event.messageId
    if hasattr(event, "lastReadMessageId"):
        changes["lastReadMessageId"] = r * 100 + event.lastReadMessageId
    return dataclasses.replace(event, **changes)


OPERATIONS = ("send", "send", "send", "read", "read", "add", "remove", "leave", "rename")
PEOPLE = range(1, 7)


def draw_room(draw, r: int, steps: int = 14) -> RoomLog:
    """A room's life as the command side records it: sends, reads, additions, removals by the
    creator, departures and renames, by whoever is in the room at the time."""
    room = RoomLog(r, [1, 2, 3])
    for _ in range(draw(st.integers(0, steps))):
        if not room.members:
            break  # the last member left: nobody can act in the room any more
        actor = draw(st.sampled_from(room.members))
        operation = draw(st.sampled_from(OPERATIONS))
        others = [p for p in room.members if p != actor]
        outsiders = [p for p in PEOPLE if p not in room.members]
        if operation == "send":
            room.send(actor)
        elif operation == "read" and room.sent:
            room.read(actor, draw(st.sampled_from(room.sent)))
        elif operation == "add" and outsiders:
            room.change(ADDED, actor, draw(st.lists(st.sampled_from(outsiders), min_size=1, max_size=2, unique=True)))
        elif operation == "remove" and actor == room.created.createdBy and others:
            room.change(REMOVED, actor, [draw(st.sampled_from(others))])
        elif operation == "leave":
            room.change(LEFT, actor, [actor])
        elif operation == "rename":
            room.change(RENAMED, actor, [], name=f"Room {room.revision + 1}")
    return room


@st.composite
def histories(draw):
    """A room's log (its creation; changes of membership and messages, in one order; markers;
    edits, reactions and deletes) delivered as consumers of several topics see it, at least once,
    in batches of any size; with the room's model of unread counts."""
    room = draw_room(draw, 0)  # the test gives every example a room of its own
    # Edits, reactions and deletes: each message's updates in revision order (a delete is last).
    updates = []
    changed = st.lists(st.sampled_from(room.sent), max_size=3, unique_by=lambda m: m.messageId) if room.sent else None
    for sent in draw(changed) if changed is not None else []:
        changes = draw(st.lists(st.sampled_from(["edited", "reactions"]), min_size=1, max_size=3))
        changes += ["deleted"] if draw(st.booleans()) else []
        for revision, change in enumerate(changes, start=1):
            reactions = [{"emoji": "👍", "customerIds": [1, revision]}] if change == "reactions" else []
            updates.append(updated(sent, revision, change, reactions=reactions))
    topics = {"room": [room.created], "messages": room.ordered, "markers": room.markers}
    # Updates arrive in any order at all (each a topic of its own here), even before their message.
    topics.update((f"update {n}", [u]) for n, u in enumerate(updates))
    # An interleaving that keeps each topic's own order, as consumers of several topics see it.
    labels = [name for name, events in topics.items() for _ in events]
    order = draw(st.permutations(labels))
    cursors = dict.fromkeys(topics, 0)
    delivered = []
    for name in order:
        delivered.append(topics[name][cursors[name]])
        cursors[name] += 1
    # At-least-once: some events come again later.
    for event in draw(st.lists(st.sampled_from(delivered), max_size=3)) if delivered else []:
        delivered.insert(draw(st.integers(len(delivered) // 2, len(delivered))), event)
    cuts = sorted(draw(st.lists(st.integers(0, len(delivered)), max_size=4)))
    batches = [delivered[a:b] for a, b in zip([0, *cuts], [*cuts, len(delivered)], strict=True)]
    return room, [b for b in batches if b], room.log() + updates


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_any_interleaving_in_any_batches_equals_a_rebuild_and_counts_as_the_model(store, history):
    room, batches, log = history
    r = room_id()
    batches = [[fresh_ids(e, r) for e in batch] for batch in batches]
    log = [fresh_ids(e, r) for e in log]
    for batch in batches:
        projection.apply(store, batch)
    views, messages, markers = state_of(store, [r])
    expected_views, expected_messages, expected_markers = rebuilt(log)
    assert views == expected_views
    assert messages == expected_messages
    assert markers == expected_markers
    view = views[r]
    assert (view["participantIds"], view["roomName"]) == (room.members, room.name)
    assert view["unreadCount"] == room.unread_counts()
    assert view["unreadStatus"] == {p: n > 0 for p, n in room.unread_counts().items()}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), writers=st.lists(st.sampled_from([0, 1]), min_size=10, max_size=10))
def test_two_writers_remembering_views_as_they_left_them_still_equal_a_rebuild(store, history, writers):
    """As when partitions move between two projectors: each one's memory of a view goes stale."""
    _, batches, log = history
    r = room_id()
    memories = [projection.ViewMemo(100), projection.ViewMemo(100)]
    for batch, writer in zip(batches, writers, strict=False):
        projection.apply_batch(store, [fresh_ids(e, r) for e in batch], memories[writer])
    for batch in batches[len(writers) :]:
        projection.apply_batch(store, [fresh_ids(e, r) for e in batch], memories[0])
    assert state_of(store, [r]) == rebuilt([fresh_ids(e, r) for e in log])


def test_a_view_moved_by_another_writer_is_read_again_not_overwritten(store):
    r = room_id()
    mine, theirs = projection.ViewMemo(10), projection.ViewMemo(10)
    projection.apply_batch(store, [room_created(r, [1, 2]), message(r, 10, 1)], mine)
    projection.apply_batch(store, [message(r, 11, 2)], theirs)
    projection.apply_batch(store, [marker(r, 1, 11)], mine)  # remembers message 10 as the last
    view = store.views.find_one({"_id": r})
    assert view["lastMessage"]["messageId"] == 11
    assert view["unreadStatus"] == {"1": False, "2": False}
    assert mine.get(r)["lastMessage"]["messageId"] == 11


def test_a_batch_that_changes_nothing_in_a_remembered_view_is_checked_against_the_stored_one(store):
    r = room_id()
    mine, theirs = projection.ViewMemo(10), projection.ViewMemo(10)
    projection.apply_batch(store, [room_created(r, [1, 2]), message(r, 10, 1)], mine)
    last = message(r, 11, 2)
    projection.apply_batch(store, [last], theirs)
    # As `mine` remembers the room, message 11 is not its last: the edit leaves the view alone.
    projection.apply_batch(store, [updated(last, 1, "edited", content="edited")], mine)
    assert store.views.find_one({"_id": r})["lastMessage"]["content"] == "edited"
    assert mine.get(r)["lastMessage"]["content"] == "edited"


def test_unread_flags_follow_a_change_of_participants_that_keeps_the_flags_values(store):
    # {"1": true, "2": true} becomes {"1": true, "4": true}: the same values, other keys.
    room = RoomLog(room_id(), [1, 2, 3])
    room.send(3)
    room.change(LEFT, 3, [3])
    projection.apply(store, room.log())
    assert store.views.find_one({"_id": room.room_id})["unreadStatus"] == {"1": True, "2": True}
    room.change(ADDED, 2, [4])
    room.send(1)
    room.change(LEFT, 2, [2])
    projection.apply(store, room.log())  # what it applied already changes nothing
    view = store.views.find_one({"_id": room.room_id})
    assert view["unreadStatus"] == {"1": True, "4": True}
    assert view["unreadCount"] == room.unread_counts()
    assert state_of(store, [room.room_id]) == rebuilt(room.log())


def test_a_batch_touching_a_hundred_rooms_completes(store):
    # FerretDB 1.x hangs on a bulk of more than ~50 matching updates; bulks go out in chunks.
    import pymongo

    rooms = [room_id() for _ in range(100)]
    events = [room_created(r, [1, 2]) for r in rooms] + [message(r, r * 100 + 1, 1) for r in rooms]
    with pymongo.timeout(60):
        announced = projection.apply(store, events)
    assert len(announced) == 100
    assert state_of(store, rooms) == rebuilt(events)

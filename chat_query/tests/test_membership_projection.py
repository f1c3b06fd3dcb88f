"""Changes of membership and names, and unread counts, in the projection (the real MongoDB-wire server)."""

import pytest

from chat_command.events import ADDED, LEFT, REMOVED, RENAMED
from chat_query import projection
from chat_query.events import RoomRemoved, RoomUpdated
from chat_query.store import ReadStore
from chat_query.tests.helpers import RoomLog, marker, message, rebuilt, room_created, room_id, state_of

pytestmark = pytest.mark.integration


@pytest.fixture
def store(scratch_mongo_db):
    store = ReadStore(scratch_mongo_db)
    store.ensure_indexes()
    return store


def fresh_room() -> RoomLog:
    r = room_id()
    return RoomLog(r, [2, 3, 1], first_message_id=r * 100)


def view_of(store, room):
    return store.views.find_one({"_id": room.room_id})


def of_type(announced, kind):
    return [e for e in announced if isinstance(e, kind)]


def test_a_change_of_membership_before_the_room_was_created_ends_as_in_the_other_order(store):
    room = fresh_room()
    room.send(1)
    room.change(ADDED, 1, [4])
    room.change(RENAMED, 4, [], name="Renamed")
    room.change(REMOVED, 1, [2])
    for event in reversed(room.log()):
        projection.apply(store, [event])
    view = view_of(store, room)
    assert (view["roomName"], view["participantIds"], view["roomRev"]) == ("Renamed", [3, 1, 4], 3)
    assert state_of(store, [room.room_id]) == rebuilt(room.log())
    assert view["unreadCount"] == room.unread_counts() == {"3": 4, "1": 0, "4": 1}


def test_an_older_revision_arriving_late_changes_nothing(store):
    room = fresh_room()
    room.change(RENAMED, 1, [], name="First")
    room.change(RENAMED, 1, [], name="Second")
    first, second = (e for e in room.ordered if type(e).__name__ == "RoomChanged")
    projection.apply(store, [room.created, second])
    assert projection.apply(store, [first]) == []
    assert view_of(store, room)["roomName"] == "Second"


def test_an_added_member_has_read_up_to_the_note_that_added_them_and_is_announced_the_room(store):
    room = fresh_room()
    room.send(1)
    room.send(2)
    projection.apply(store, [room.created, *room.ordered])
    room.ordered.clear()
    room.change(ADDED, 1, [4, 5])
    # The change and its note travel together; the new members' markers come on their own topic.
    [announced] = projection.apply(store, room.ordered)
    assert isinstance(announced, RoomUpdated)
    assert announced.participantIds == [2, 3, 1, 4, 5], "pushed to the new members too"
    assert announced.unreadCount == {"2": 1, "3": 3, "1": 0, "4": 0, "5": 0}
    assert announced.unreadStatus == {"2": True, "3": True, "1": False, "4": False, "5": False}
    projection.apply(store, room.markers)
    assert view_of(store, room)["unreadCount"] == room.unread_counts()


def test_a_removal_announces_the_room_to_those_left_and_its_removal_to_the_removed(store):
    room = fresh_room()
    projection.apply(store, [room.created])
    room.change(REMOVED, 1, [2])
    announced = projection.apply(store, room.ordered)
    [view] = of_type(announced, RoomUpdated)
    assert view.participantIds == [3, 1]
    assert set(view.unreadCount) == {"3", "1"}, "a removed member has no count"
    assert of_type(announced, RoomRemoved) == [RoomRemoved(roomId=room.room_id, customerIds=[2])]


def test_a_member_who_left_and_came_back_in_the_same_batch_is_not_told_the_room_was_removed(store):
    room = fresh_room()
    projection.apply(store, [room.created])
    room.change(LEFT, 3, [3])
    room.change(ADDED, 1, [3])
    announced = projection.apply(store, room.ordered)
    assert of_type(announced, RoomRemoved) == []
    assert of_type(announced, RoomUpdated)[0].participantIds == [2, 1, 3]


def test_a_replayed_removal_announces_the_removal_again_and_changes_nothing(store):
    room = fresh_room()
    room.change(LEFT, 2, [2])
    projection.apply(store, room.log())
    before = state_of(store, [room.room_id])
    announced = projection.apply(store, room.ordered)
    assert of_type(announced, RoomRemoved) == [RoomRemoved(roomId=room.room_id, customerIds=[2])]
    assert state_of(store, [room.room_id]) == before


def test_a_read_marker_announces_the_room_with_the_readers_new_count(store):
    room = fresh_room()
    sent = [room.send(1) for _ in range(3)]
    projection.apply(store, [room.created, *room.ordered])
    room.read(2, sent[0])
    [updated, _] = projection.apply(store, room.markers)
    assert updated.unreadCount == {"2": 2, "3": 3, "1": 0}


def test_unread_counts_stop_at_999(store):
    room = fresh_room()
    projection.apply(store, [room.created, message(room.room_id, 10, 1, seq=1500), marker(room.room_id, 2, 9, seq=600)])
    view = view_of(store, room)
    assert view["unreadCount"] == {"2": 900, "3": 999, "1": 0}
    assert projection.view_json(view)["unreadCount"] == {"2": 900, "3": 999, "1": 0}


def test_a_system_message_keeps_its_kind_and_facts_in_the_read_store(store):
    room = fresh_room()
    note = room.change(RENAMED, 1, [], name="New name")
    projection.apply(store, room.log())
    stored = store.messages.find_one({"_id": note.messageId})
    assert stored["type"] == "system"
    assert stored["system"] == {"action": "renamed", "actorId": 1, "customerIds": [], "roomName": "New name"}


def test_a_view_from_before_seqs_keeps_answering_sensibly_as_seqd_messages_arrive(store):
    """Views written before messages had seqs hold no lastSeq: they answer as the flags did,
    then count from the first seq'd message on (the older messages as at most one)."""
    r = room_id()
    old = [room_created(r, [2, 3, 1]), message(r, 10, 1), message(r, 11, 1), marker(r, 2, 11)]
    projection.apply(store, old)
    store.views.update_one({"_id": r}, {"$unset": {"roomRev": "", "unreadCount": ""}})  # as the old code left it
    view = store.views.find_one({"_id": r})
    assert projection.view_json(view)["unreadCount"] == {"2": 0, "3": 1, "1": 0}
    projection.apply(store, [message(r, 12, 2, seq=3), message(r, 13, 2, seq=4)])
    assert store.views.find_one({"_id": r})["unreadCount"] == {"2": 0, "3": 3, "1": 2}

"""Adding, removing and leaving people, and renaming rooms: the commands, their events, their refusals."""

import threading

import psycopg
import pytest
from django.db import connection
from django.test import Client

from chat_command.events import RoomChanged
from chat_command.models import Message, OutboxEvent, Room, RoomParticipant
from chat_command.services import (
    NewMessage,
    NewRoom,
    do_add_participants,
    do_create_room,
    do_remove_participant,
    do_send_message,
)
from conftest import login


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


def patch(client, url, body):
    return client.patch(url, body, content_type="application/json")


def events(type_name, room_id):
    return [e.payload for e in OutboxEvent.objects.filter(type=type_name, key=str(room_id)).order_by("id")]


def members(room):
    return list(RoomParticipant.objects.filter(room=room).order_by("position").values_list("customer_id", flat=True))


def refused(response, status, message=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert (body["success"], body["data"]) == (False, None)
    if message is not None:
        assert message in body["message"]
    return body["message"]


def send(room, sender=1, content="hi"):
    return do_send_message(sender, NewMessage(room.room_id, content, None)).message_id


@pytest.fixture
def user3(seeded):
    other = Client(REMOTE_ADDR="127.0.0.3")
    login(other, "user3", "12345")
    return other


def test_adding_people_records_the_room_a_system_message_and_their_read_positions(user1, room):
    first = send(room)
    response = post(user1, f"/command/room/{room.room_id}/participants", {"customerIds": [3, 2]})
    assert response.status_code == 200, response.content
    assert response.json()["data"] == [3], "those already in the room are ignored"
    assert members(room) == [2, 1, 3]

    [changed] = events("RoomChanged", room.room_id)
    assert changed["change"] == "added"
    assert (changed["revision"], changed["actorId"], changed["customerIds"]) == (1, 1, [3])
    assert [p["id"] for p in changed["participants"]] == [2, 1, 3]
    assert (changed["roomName"], changed["createdBy"]) == ("Room of 1 and 2", 1)

    note = Message.objects.get(room=room, kind="system")
    assert note.message_id > first
    assert (note.sender_id, note.seq) == (1, 2)
    assert note.content == "Vũ Thanh Hải added Nguyễn Anh Quốc."
    assert note.system == {"action": "added", "actorId": 1, "customerIds": [3], "roomName": "Room of 1 and 2"}
    sent = events("MessageSent", room.room_id)[-1]
    assert (sent["messageId"], sent["type"], sent["seq"], sent["system"]) == (note.message_id, "system", 2, note.system)

    joined = RoomParticipant.objects.get(room=room, customer_id=3)
    assert joined.last_read_message_id == note.message_id, "a new member has read up to their arrival"
    [marker] = events("ReadMarkerUpdated", room.room_id)
    assert marker == {"roomId": room.room_id, "customerId": 3, "lastReadMessageId": note.message_id, "seq": 2}
    assert Room.objects.get(pk=room.room_id).revision == 1


def test_adding_only_people_already_there_changes_nothing(user1, room):
    response = post(user1, f"/command/room/{room.room_id}/participants", {"customerIds": [2]})
    assert response.status_code == 200
    assert response.json()["data"] == []
    assert events("RoomChanged", room.room_id) == []
    assert not Message.objects.filter(room=room).exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "customerIds cannot be empty."),
        ({"customerIds": []}, "customerIds cannot be empty."),
        ({"customerIds": "3"}, "customerIds must be a list of customer ids."),
        ({"customerIds": [3, 3]}, "customerIds contains duplicate ids: 3."),
        ({"customerIds": [3, 999_999]}, "Unknown customer ids: 999999."),
        ({"customerIds": list(range(3, 104))}, "At most 100 customers can be added at once."),
    ],
)
def test_bad_additions_are_400_and_change_nothing(user1, room, body, message):
    assert refused(post(user1, f"/command/room/{room.room_id}/participants", body), 400) == message
    assert members(room) == [2, 1]
    assert events("RoomChanged", room.room_id) == []


def test_a_room_never_holds_more_than_its_limit(user1, room, settings):
    settings.ROOM_MAX_PARTICIPANTS = 2
    response = post(user1, f"/command/room/{room.room_id}/participants", {"customerIds": [3]})
    refused(response, 409, "can hold at most 2 participants")
    assert members(room) == [2, 1]


def test_only_participants_change_a_room_and_an_unknown_room_is_404(user1, outsider, room):
    url = f"/command/room/{room.room_id}"
    refused(post(outsider, f"{url}/participants", {"customerIds": [3]}), 403)
    refused(patch(outsider, url, {"roomName": "Mine"}), 403)
    refused(outsider.delete(f"{url}/participants/me"), 403)
    refused(outsider.delete(f"{url}/participants/2"), 403)
    refused(post(user1, "/command/room/987654321/participants", {"customerIds": [3]}), 404, "does not exist")
    refused(patch(user1, "/command/room/987654321", {"roomName": "x"}), 404, "does not exist")
    refused(user1.delete(f"/command/room/{2**63}/participants/me"), 404, "does not exist")
    assert members(room) == [2, 1]
    assert Room.objects.get(pk=room.room_id).room_name == "Room of 1 and 2"


def test_the_creator_removes_someone_who_then_loses_access_at_once(user1, user2, room):
    message = send(room)
    response = user1.delete(f"/command/room/{room.room_id}/participants/2")
    assert response.status_code == 200, response.content
    assert members(room) == [1]
    [changed] = events("RoomChanged", room.room_id)
    assert (changed["change"], changed["customerIds"], [p["id"] for p in changed["participants"]]) == (
        "removed",
        [2],
        [1],
    )
    assert Message.objects.get(room=room, kind="system").content == "Vũ Thanh Hải removed Huỳnh Đặng Tấn Phát."

    refused(post(user2, "/command/message", {"roomId": room.room_id, "content": "still here?"}), 403)
    refused(user2.get(f"/query/message/roomId/{room.room_id}"), 403)
    refused(user2.get(f"/query/readMarkers/roomId/{room.room_id}"), 403)
    refused(user2.get(f"/query/onlineStatus/roomId/{room.room_id}"), 403)
    refused(post(user2, "/command/read", {"roomId": room.room_id, "messageId": message}), 403)
    refused(user2.put(f"/command/message/{message}/reactions/%F0%9F%91%8D"), 403)
    rooms = user2.get("/query/rooms").json()["data"] or []
    assert room.room_id not in [r["roomId"] for r in rooms]


def test_only_the_creator_removes_and_only_members_can_be_removed(user1, user2, room):
    do_add_participants(1, room.room_id, [3])
    refused(user2.delete(f"/command/room/{room.room_id}/participants/3"), 403, "Only the creator")
    refused(user1.delete(f"/command/room/{room.room_id}/participants/999999"), 404, "is not in Room")
    assert members(room) == [2, 1, 3]


def test_leaving_removes_only_the_leaver_and_removing_yourself_is_leaving(user1, user2, room):
    do_add_participants(1, room.room_id, [3])
    assert user2.delete(f"/command/room/{room.room_id}/participants/me").status_code == 200
    assert user1.delete(f"/command/room/{room.room_id}/participants/1").status_code == 200
    assert members(room) == [3]
    changes = events("RoomChanged", room.room_id)
    assert [(c["change"], c["actorId"], c["customerIds"], c["revision"]) for c in changes] == [
        ("added", 1, [3], 1),
        ("left", 2, [2], 2),
        ("left", 1, [1], 3),
    ]
    notes = Message.objects.filter(room=room, kind="system").order_by("message_id")
    assert [n.content for n in notes][1:] == ["Huỳnh Đặng Tấn Phát left the room.", "Vũ Thanh Hải left the room."]


def test_a_room_its_last_member_left_stays_and_nobody_reaches_it(user1, room, user3):
    do_remove_participant(1, room.room_id, 2)
    assert user1.delete(f"/command/room/{room.room_id}/participants/me").status_code == 200
    assert Room.objects.filter(pk=room.room_id).exists()
    assert members(room) == []
    refused(post(user1, f"/command/room/{room.room_id}/participants", {"customerIds": [1]}), 403)
    refused(user3.get(f"/query/message/roomId/{room.room_id}"), 403)


def test_renaming_records_the_new_name_and_the_same_name_again_records_nothing(user1, user2, room):
    response = patch(user2, f"/command/room/{room.room_id}", {"roomName": "  Plans  "})
    assert response.status_code == 200, response.content
    assert Room.objects.get(pk=room.room_id).room_name == "Plans"
    [changed] = events("RoomChanged", room.room_id)
    assert (changed["change"], changed["actorId"], changed["roomName"], changed["customerIds"]) == (
        "renamed",
        2,
        "Plans",
        [],
    )
    assert Message.objects.get(room=room, kind="system").content == 'Huỳnh Đặng Tấn Phát renamed the room to "Plans".'
    assert patch(user1, f"/command/room/{room.room_id}", {"roomName": "Plans"}).status_code == 200
    assert len(events("RoomChanged", room.room_id)) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "roomName cannot be empty."),
        ({"roomName": "   "}, "roomName cannot be empty."),
        ({"roomName": 5}, "roomName cannot be empty."),
        ({"roomName": "x" * 101}, "roomName must be at most 100 characters."),
    ],
)
def test_bad_names_are_400_and_change_nothing(user1, room, body, message):
    assert refused(patch(user1, f"/command/room/{room.room_id}", body), 400) == message
    assert Room.objects.get(pk=room.room_id).room_name == "Room of 1 and 2"


def test_a_system_message_takes_reactions_but_no_edit_or_delete(user1, room):
    do_add_participants(1, room.room_id, [3])
    note = Message.objects.get(room=room, kind="system")
    refused(patch(user1, f"/command/message/{note.message_id}", {"content": "rewritten"}), 409, "record of a change")
    refused(user1.delete(f"/command/message/{note.message_id}"), 409, "record of a change")
    assert user1.put(f"/command/message/{note.message_id}/reactions/%F0%9F%91%8B").status_code == 200
    [update] = events("MessageUpdated", room.room_id)
    assert (update["type"], update["system"]) == ("system", note.system), "the reaction keeps what the message is"


@pytest.mark.django_db(transaction=True)
def test_a_send_waiting_on_the_room_while_its_sender_is_removed_is_refused(seeded):
    """The send locks the room, then reads membership: as the removal it waited for left it."""
    room = do_create_room(1, NewRoom("Race", [2]))
    settings_dict = connection.settings_dict
    holder = psycopg.connect(
        host=settings_dict["HOST"],
        port=settings_dict["PORT"],
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"],
    )
    outcome = []

    def sender() -> None:
        try:
            outcome.append(send(room, sender=2, content="late"))
        except Exception as exc:  # noqa: BLE001 - the refusal is the point
            outcome.append(exc)
        finally:
            connection.close()

    with holder:
        holder.execute("SELECT 1 FROM rooms WHERE room_id = %s FOR UPDATE", [room.room_id])
        thread = threading.Thread(target=sender)
        thread.start()
        # Statistics views keep one snapshot per transaction: cleared before each look.
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        for _ in range(500):
            holder.execute("SELECT pg_stat_clear_snapshot()")
            if holder.execute(waiting).fetchone()[0]:
                break
            threading.Event().wait(0.01)
        else:
            pytest.fail(f"the send never waited for the room's lock: {outcome}")
        holder.execute("DELETE FROM room_participants WHERE room_id = %s AND customer_id = 2", [room.room_id])
    thread.join(30)
    [result] = outcome
    assert getattr(result, "status", None) == 403, result
    assert not Message.objects.filter(room=room).exists()


@pytest.mark.django_db(transaction=True)
def test_sends_racing_a_removal_are_ordered_by_it(seeded):
    """Every message of the removed sender precedes the removal, in ids, seqs and outbox order."""
    room = do_create_room(1, NewRoom("Busy room", [2, 3]))
    start = threading.Barrier(3)
    errors = []

    def sender(who: int) -> None:
        start.wait()
        try:
            for n in range(30):
                try:
                    send(room, sender=who, content=f"{who}:{n}")
                except Exception as exc:  # noqa: BLE001 - only the removed sender may be refused
                    if who != 3 or getattr(exc, "status", None) != 403:
                        errors.append(exc)
                if who == 1 and n == 10:
                    do_remove_participant(1, room.room_id, 3)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, args=(who,)) for who in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    messages = list(Message.objects.filter(room=room).order_by("message_id").values_list("message_id", "seq", "kind"))
    assert [seq for _, seq, _ in messages] == list(range(1, len(messages) + 1)), "seqs follow ids, with no gap"
    [removal] = [m for m, _, kind in messages if kind == "system"]
    by_three = Message.objects.filter(room=room, sender_id=3, kind="user").values_list("message_id", flat=True)
    assert by_three, "the removed sender sent before the removal"
    assert max(by_three) < removal
    log = list(OutboxEvent.objects.filter(key=str(room.room_id)).order_by("id").values_list("type", "payload"))
    [changed_at] = [n for n, (kind, _) in enumerate(log) if kind == RoomChanged.TYPE]
    sent = [(n, p["messageId"]) for n, (kind, p) in enumerate(log) if kind == "MessageSent"]
    assert all((n < changed_at) == (message_id < removal) for n, message_id in sent)

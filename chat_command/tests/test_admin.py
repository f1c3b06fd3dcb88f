"""The admin pages an operator uses: customers, rooms with participants, messages, the outbox."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from chat_command.models import OutboxEvent, Room
from chat_command.services import NewMessage, NewRoom, do_create_room, do_send_message


@pytest.fixture
def conversation(seeded):
    room = do_create_room(1, NewRoom("Operators' room", [2, 3]))
    first = do_send_message(1, NewMessage(room.room_id, "needle in the haystack", None))
    second = do_send_message(2, NewMessage(room.room_id, "another message", None))
    return room, first, second


def changelist_ids(response, column: str = "field-message_id") -> list[str]:
    """The first column of a change list's rows, whether or not it is a link."""
    return re.findall(rf'class="{column}">(?:<a [^>]*>)?([^<]*)', response.content.decode())


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/accounts/customer/",
        "/admin/accounts/customer/1/change/",
        "/admin/chat_command/room/",
        "/admin/chat_command/room/add/",
        "/admin/chat_command/message/",
        "/admin/chat_command/outboxevent/",
        "/admin/chat_command/outboxevent/?state=pending",
        "/admin/chat_command/outboxevent/?state=stuck",
        "/admin/chat_command/outboxevent/?state=published",
    ],
)
def test_the_admin_pages_render_for_a_superuser(operator, conversation, url):
    response = operator.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_a_room_page_lists_its_participants_by_name(operator, conversation):
    room, _, _ = conversation
    response = operator.get(f"/admin/chat_command/room/{room.room_id}/change/")
    page = response.content.decode()
    assert response.status_code == 200
    for name in ("Vũ Thanh Hải", "Huỳnh Đặng Tấn Phát", "Nguyễn Anh Quốc"):
        assert name in page


def test_messages_are_found_by_room_id_and_by_sender(operator, conversation):
    room, first, second = conversation
    by_room = operator.get("/admin/chat_command/message/", {"q": str(room.room_id)})
    assert sorted(changelist_ids(by_room)) == sorted([str(first.message_id), str(second.message_id)])
    by_sender = operator.get("/admin/chat_command/message/", {"q": "user2"})
    assert changelist_ids(by_sender) == [str(second.message_id)]
    by_words = operator.get("/admin/chat_command/message/", {"q": "needle"})
    assert changelist_ids(by_words) == [str(first.message_id)]


def test_the_outbox_shows_which_events_wait_for_the_broker(operator, conversation):
    room, _, _ = conversation
    events = OutboxEvent.objects.filter(key=str(room.room_id))
    events.update(published_at=timezone.now())
    events.filter(type="MessageSent").update(published_at=None)
    pending = operator.get("/admin/chat_command/outboxevent/", {"state": "pending", "q": str(room.room_id)})
    assert len(changelist_ids(pending, "field-id")) == 2
    assert "so far" in pending.content.decode()
    published = operator.get("/admin/chat_command/outboxevent/", {"state": "published", "q": str(room.room_id)})
    assert len(changelist_ids(published, "field-id")) == 1


def test_an_operator_cannot_edit_or_delete_the_event_log(operator, conversation):
    event = OutboxEvent.objects.first()
    assert event is not None
    response = operator.post(f"/admin/chat_command/outboxevent/{event.id}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert OutboxEvent.objects.filter(id=event.id).exists()


def test_a_customer_without_staff_rights_is_sent_to_the_admin_login(client, seeded):
    assert client.login(username="user1", password="123")
    response = client.get("/admin/chat_command/message/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_deleting_a_message_in_the_admin_leaves_the_tombstone_and_event_the_senders_deletion_does(
    operator, conversation, user2
):
    from chat_command.models import Message
    from chat_query.tests.helpers import project

    room, first, _ = conversation
    response = operator.post(f"/admin/chat_command/message/{first.message_id}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content
    stored = Message.objects.get(message_id=first.message_id)
    assert (stored.content, stored.deleted_at is not None, stored.revision) == ("", True, 1)
    [event] = OutboxEvent.objects.filter(type="MessageUpdated", payload__messageId=first.message_id)
    assert (event.payload["change"], event.payload["deleted"]) == ("deleted", True)
    project()
    page = {m["messageId"]: m for m in user2.get(f"/query/message/roomId/{room.room_id}").json()["data"]}
    assert (page[first.message_id]["deleted"], page[first.message_id]["content"]) == (True, "")


def test_the_admins_bulk_delete_of_messages_goes_through_the_command_too(operator, conversation):
    from chat_command.models import Message

    _, first, second = conversation
    ids = [first.message_id, second.message_id]
    response = operator.post(
        "/admin/chat_command/message/", {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert response.status_code == 302, response.content
    assert set(Message.objects.filter(message_id__in=ids).values_list("content", flat=True)) == {""}
    assert OutboxEvent.objects.filter(type="MessageUpdated", payload__messageId__in=ids).count() == 2


def test_what_has_no_command_is_read_only_in_the_admin(operator, conversation):
    from chat_command.models import Message

    _, first, _ = conversation
    refused = [
        operator.post(f"/admin/chat_command/message/{first.message_id}/change/", {"content": "rewritten"}),
        operator.post("/admin/chat_command/message/add/", {"content": "forged"}),
    ]
    assert [r.status_code for r in refused] == [403] * 2
    assert Message.objects.get(message_id=first.message_id).content == "needle in the haystack"
    assert not OutboxEvent.objects.filter(type="MessageUpdated").exists()


# --- Rooms and their people, through the room commands ------------------------------------------


def events_of(room_id: int, *types: str) -> list[dict]:
    """The payloads the room's changes recorded, in the order recorded."""
    rows = OutboxEvent.objects.filter(key=str(room_id), type__in=types).order_by("id")
    return [{"type": r.type, **r.payload} for r in rows]


def system_notes(room_id: int) -> list[str]:
    from chat_command.models import Message

    return list(
        Message.objects.filter(room_id=room_id, kind="system").order_by("seq").values_list("content", flat=True)
    )


def member_ids(room_id: int) -> list[int]:
    from chat_command.models import RoomParticipant

    return list(
        RoomParticipant.objects.filter(room_id=room_id).order_by("position").values_list("customer_id", flat=True)
    )


def change_room(operator, room, **fields):
    """Submit the room's admin page as a browser would: its current name unless given, the rest as given."""
    data = {"name": room.room_name, **fields}
    return operator.post(f"/admin/chat_command/room/{room.room_id}/change/", data)


def test_a_room_created_in_the_admin_is_created_by_the_command_with_its_event(operator, seeded):
    response = operator.post(
        "/admin/chat_command/room/add/", {"name": "From the admin", "creator": "1", "people": "3,2"}
    )
    assert response.status_code == 302, response.content
    room = Room.objects.get(room_name="From the admin")
    assert member_ids(room.room_id) == [3, 2, 1], "targets in the order given, then the creator, as the API does"
    [created] = events_of(room.room_id, "RoomCreated")
    assert (created["createdBy"], [p["id"] for p in created["participants"]]) == (1, [3, 2, 1])


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"name": "Ghosts", "people": "2,999999"}, "Unknown customer ids: 999999."),
        ({"name": "   ", "people": "2"}, "roomName and targetCustomerIds cannot be empty."),
        ({"name": "Alone", "people": ""}, "At least one target customer is required to create a room."),
        ({"name": "Myself", "people": "2,1"}, "targetCustomerIds should not contain the creator&#x27;s customerId."),
        ({"name": "Typo", "people": "2;3"}, "Customer ids are whole numbers separated by commas."),
    ],
)
def test_a_refused_room_creation_shows_the_commands_message_and_creates_nothing(operator, seeded, fields, refusal):
    rooms_before = Room.objects.count()
    response = operator.post("/admin/chat_command/room/add/", {"creator": "1", **fields})
    assert response.status_code == 200
    assert refusal in response.content.decode()
    assert Room.objects.count() == rooms_before
    assert not OutboxEvent.objects.filter(type="RoomCreated", payload__roomName=fields["name"]).exists()


def test_renaming_in_the_admin_records_room_changed_and_a_system_message_in_the_creators_name(operator, conversation):
    room, _, _ = conversation
    response = change_room(operator, room, name="Renamed by an operator")
    assert response.status_code == 302, response.content
    assert Room.objects.get(room_id=room.room_id).room_name == "Renamed by an operator"
    [changed] = events_of(room.room_id, "RoomChanged")
    assert (changed["change"], changed["actorId"], changed["revision"]) == ("renamed", 1, 1)
    assert system_notes(room.room_id) == ['Vũ Thanh Hải renamed the room to "Renamed by an operator".']


def test_adding_and_removing_people_in_the_admin_runs_the_membership_commands_with_their_events(operator, room):
    from accounts.models import Customer

    newcomer = Customer.objects.create_user("admin-newcomer", "pw", full_name="Newcomer Nguyen")
    response = change_room(operator, room, add=f"3,{newcomer.customer_id}", remove=["2"])
    assert response.status_code == 302, response.content
    assert member_ids(room.room_id) == [1, 3, newcomer.customer_id]
    changes = events_of(room.room_id, "RoomChanged")
    assert [(c["change"], c["actorId"], c["customerIds"], c["revision"]) for c in changes] == [
        ("added", 1, [3, newcomer.customer_id], 1),
        ("removed", 1, [2], 2),
    ]
    assert [p["id"] for p in changes[-1]["participants"]] == member_ids(room.room_id), "the event holds the truth"
    markers = events_of(room.room_id, "ReadMarkerUpdated")
    assert sorted(m["customerId"] for m in markers) == sorted([3, newcomer.customer_id])
    assert system_notes(room.room_id) == [
        "Vũ Thanh Hải added Nguyễn Anh Quốc and Newcomer Nguyen.",
        "Vũ Thanh Hải removed Huỳnh Đặng Tấn Phát.",
    ]
    assert Room.objects.get(room_id=room.room_id).revision == 2


def test_after_the_creator_left_the_admin_acts_for_the_longest_standing_member_and_a_removal_is_leaving(
    operator, conversation
):
    from chat_command.services import do_leave_room

    room, _, _ = conversation  # customers 2, 3, then the creator 1
    do_leave_room(1, room.room_id)
    page = operator.get(f"/admin/chat_command/room/{room.room_id}/change/").content.decode()
    assert "Huỳnh Đặng Tấn Phát (customer 2)" in page, "the page says in whose name it acts"
    response = change_room(operator, room, name="Without its creator", remove=["3"])
    assert response.status_code == 302, response.content
    changes = events_of(room.room_id, "RoomChanged")
    assert [(c["change"], c["actorId"], c["customerIds"]) for c in changes] == [
        ("left", 1, [1]),
        ("renamed", 2, []),
        ("left", 3, [3]),
    ]
    assert member_ids(room.room_id) == [2]


def test_a_room_its_last_member_left_cannot_be_changed_in_the_admin(operator, room):
    from chat_command.services import do_leave_room

    do_leave_room(2, room.room_id)
    do_leave_room(1, room.room_id)
    page = operator.get(f"/admin/chat_command/room/{room.room_id}/change/").content.decode()
    assert "no one: the room has no members left" in page
    response = change_room(operator, room, name="Revived", add="3")
    assert response.status_code == 200
    assert f"Room {room.room_id} has no members left: no one remains to change it." in response.content.decode()
    assert (Room.objects.get(room_id=room.room_id).room_name, member_ids(room.room_id)) == ("Room of 1 and 2", [])


def test_removing_the_creator_in_the_admin_removes_the_others_first_in_their_name(operator, conversation):
    room, _, _ = conversation
    response = change_room(operator, room, remove=["1", "2"])
    assert response.status_code == 302, response.content
    changes = events_of(room.room_id, "RoomChanged")
    assert [(c["change"], c["actorId"], c["customerIds"]) for c in changes] == [("removed", 1, [2]), ("left", 1, [1])]
    assert member_ids(room.room_id) == [3]


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"name": "  "}, "roomName cannot be empty."),
        ({"name": "x" * 101}, "roomName must be at most 100 characters."),
        ({"name": "Renamed first", "add": "999999"}, "Unknown customer ids: 999999."),
        ({"name": "Renamed first", "add": "{extra}"}, "Room {room_id} can hold at most 3 participants."),
        ({"name": "Renamed first", "add": "three"}, "Customer ids are whole numbers separated by commas."),
        ({"name": "Renamed first", "remove": ["999999"]}, "Select a valid choice."),
    ],
)
def test_a_refused_change_in_the_admin_shows_the_commands_message_and_changes_nothing(
    operator, conversation, settings, fields, refusal
):
    from accounts.models import Customer

    settings.ROOM_MAX_PARTICIPANTS = 3
    room, _, _ = conversation
    extra = Customer.objects.create_user("admin-extra", "pw", full_name="Extra Person").customer_id
    response = change_room(operator, room, **{k: v.format(extra=extra) if k == "add" else v for k, v in fields.items()})
    assert response.status_code == 200
    assert refusal.format(room_id=room.room_id) in response.content.decode()
    stored = Room.objects.get(room_id=room.room_id)
    assert (stored.room_name, stored.revision) == ("Operators' room", 0)
    assert member_ids(room.room_id) == [2, 3, 1]
    assert events_of(room.room_id, "RoomChanged") == []
    assert system_notes(room.room_id) == []


def test_submitting_the_room_page_unchanged_records_nothing(operator, conversation):
    room, _, _ = conversation
    response = change_room(operator, room, add="2,3")
    assert response.status_code == 302, response.content
    assert events_of(room.room_id, "RoomChanged") == []
    assert Room.objects.get(room_id=room.room_id).revision == 0


def test_rooms_participants_and_system_messages_cannot_be_deleted_in_the_admin(operator, conversation):
    from chat_command.models import Message
    from chat_command.services import do_rename_room

    room, first, _ = conversation
    do_rename_room(1, room.room_id, "Recorded")
    note = Message.objects.get(room_id=room.room_id, kind="system")
    refused = [
        operator.post(f"/admin/chat_command/room/{room.room_id}/delete/", {"post": "yes"}),
        operator.post(f"/admin/chat_command/message/{note.message_id}/delete/", {"post": "yes"}),
        operator.get("/admin/chat_command/roomparticipant/"),
    ]
    assert [r.status_code for r in refused] == [403, 403, 404]
    rooms = operator.get("/admin/chat_command/room/").content.decode()
    assert "delete_selected" not in rooms, "no bulk delete of rooms either"
    bulk = operator.post(
        "/admin/chat_command/message/",
        {"action": "delete_selected", "_selected_action": [note.message_id, first.message_id], "post": "yes"},
    )
    assert bulk.status_code == 403, "a selection holding a system message is refused whole"
    assert Message.objects.get(message_id=note.message_id).content == 'Vũ Thanh Hải renamed the room to "Recorded".'
    assert Message.objects.get(message_id=first.message_id).deleted_at is None
    assert Room.objects.filter(room_id=room.room_id).exists()
    assert member_ids(room.room_id) == [2, 3, 1]


# --- End to end: from the admin to the room list and the live clients ---------------------------


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, kafka_bootstrap):
    """Web processes, the relay, the projector and the pusher on the test database."""
    from realtime.tests.stack import Stack

    running = Stack().start()
    yield running
    running.stop()


def pushes_until(collector, *wanted, timeout: float = 30.0) -> list[tuple[str, dict]]:
    """(destination, body) of the frames a STOMP client received, until each of `wanted` matched one."""
    import json
    import queue
    import time

    received: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    while not all(any(w(*push) for push in received) for w in wanted):
        try:
            kind, headers, body = collector.next(max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            pytest.fail(f"not every push expected arrived; received {received}")
        assert kind == "MESSAGE", (headers, body)
        received.append((headers["destination"], json.loads(body)))
    return received


@pytest.mark.integration
def test_a_room_changed_in_the_admin_shows_in_the_room_list_and_reaches_subscribed_clients(
    stack, transactional_db, operator, user2, client, unique
):
    from chat_query.store import active_store
    from conftest import login
    from infrastructure.testing.waiting import wait_for
    from realtime.tests.stack import stomp_client, subscribe

    room = do_create_room(1, NewRoom(f"Before {unique}", [2]))
    named = {"_id": room.room_id, "roomName": room.room_name}
    assert wait_for(lambda: active_store(fresh=True).views.find_one(named) is not None), "the room was projected"
    watcher, watched = stomp_client(stack.ports[0], 2)
    subscribe(watcher, watched, "/user/topic/rooms", id="rooms")
    subscribe(watcher, watched, f"/topic/message/roomId/{room.room_id}", id="messages")
    newcomer, arrivals = stomp_client(stack.ports[1], 3)
    subscribe(newcomer, arrivals, "/user/topic/rooms", id="rooms")

    response = change_room(operator, room, name=f"After {unique}", add="3")
    assert response.status_code == 302, response.content

    def renamed_with_3(destination, body):
        return (
            destination == "/user/topic/rooms" and body["roomName"] == f"After {unique}" and 3 in body["participantIds"]
        )

    def note_of_adding(destination, body):
        return (body.get("system") or {}).get("action") == "added"

    seen = pushes_until(watched, renamed_with_3, note_of_adding)
    notes = [body for destination, body in seen if destination == f"/topic/message/roomId/{room.room_id}"]
    assert [(n["type"], n["system"]["action"]) for n in notes] == [("system", "renamed"), ("system", "added")]
    assert pushes_until(arrivals, renamed_with_3)[-1][1]["roomId"] == room.room_id, "the newcomer was sent the room"

    def listed(caller):
        rooms = {r["roomId"]: r for r in caller.get("/query/rooms").json()["data"]}
        return rooms.get(room.room_id, {})

    assert wait_for(lambda: listed(user2).get("roomName") == f"After {unique}"), "the rename reached GET /query/rooms"
    assert sorted(listed(user2)["participantIds"]) == [1, 2, 3]
    login(client, "user3", "12345")
    assert listed(client).get("roomName") == f"After {unique}", "the newcomer's room list holds the room"
    watcher.disconnect()
    newcomer.disconnect()

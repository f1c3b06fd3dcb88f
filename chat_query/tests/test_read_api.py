"""The /query endpoints against PostgreSQL, the MongoDB-wire read store and Redis."""

import pytest

from chat_command.services import NewRoom, ReadMarker, do_create_room, do_mark_read
from chat_query.tests.helpers import body, project, send
from realtime import presence

pytestmark = pytest.mark.integration


# Every endpoint about one room, {r} standing for its id.
ROOM_ENDPOINTS = [
    "/query/message/roomId/{r}",
    "/query/message/roomId/{r}/index/1000",
    "/query/onlineStatus/roomId/{r}",
    "/query/readMarkers/roomId/{r}",
]


def test_rooms_are_listed_newest_activity_first_with_the_contract_fields(user1, room):
    quiet = do_create_room(1, NewRoom("Quiet", [3]))
    [last] = send(room, 2)
    project()
    data = body(user1.get("/query/rooms"))
    assert data["message"] == "Rooms retrieved successfully."
    assert [r["roomId"] for r in data["data"]] == [room.room_id, quiet.room_id]
    view = data["data"][0]
    assert list(view) == [
        "roomId",
        "roomName",
        "participantIds",
        "unreadStatus",
        "unreadCount",
        "lastMessage",
        "createdAt",
        "updatedAt",
        "createdBy",
    ]
    assert view["participantIds"] == [2, 1]
    assert view["unreadStatus"] == {"2": False, "1": True}
    assert view["unreadCount"] == {"2": 0, "1": 1}
    assert view["lastMessage"]["messageId"] == last
    assert view["lastMessage"]["senderId"] == 2
    assert view["lastMessage"]["type"] == "user"
    assert view["createdBy"] == 1
    assert view["updatedAt"].endswith("Z")
    assert view["createdAt"].endswith("Z")
    assert data["data"][1]["lastMessage"] is None


def test_a_customer_without_rooms_gets_an_empty_list(outsider):
    assert body(outsider.get("/query/rooms")) == {
        "success": True,
        "message": "No rooms found for this user.",
        "data": [],
    }


def test_a_room_just_created_is_listed_before_it_is_projected(user1, seeded):
    created = do_create_room(1, NewRoom("Brand new", [2]))
    rooms = body(user1.get("/query/rooms"))["data"]
    assert rooms[0]["roomId"] == created.room_id
    assert rooms[0]["roomName"] == "Brand new"
    assert rooms[0]["unreadStatus"] == {"2": False, "1": False}


def test_the_first_page_is_the_newest_twenty_newest_first(user1, room):
    ids = send(room, 1, 25)
    project()
    data = body(user1.get(f"/query/message/roomId/{room.room_id}"))
    assert data["message"] == "Latest messages retrieved successfully."
    assert [m["messageId"] for m in data["data"]] == ids[::-1][:20]
    first = data["data"][0]
    # The reference's fields, then the ones edits, deletes and reactions added, then membership's.
    assert list(first) == [
        *("messageId", "roomId", "senderId", "senderFullName", "content", "sentAt"),
        *("editedAt", "deleted", "reactions"),
        *("type", "system"),
    ]
    assert (first["type"], first["system"]) == ("user", None)
    assert (first["editedAt"], first["deleted"], first["reactions"]) == (None, False, [])
    assert first["senderFullName"] == "Vũ Thanh Hải"
    assert first["sentAt"].endswith("Z")


def test_paging_back_uses_an_exclusive_cursor_and_ends_with_an_empty_list(user1, room):
    ids = send(room, 1, 25)
    project()
    older = body(user1.get(f"/query/message/roomId/{room.room_id}/index/{ids[5]}"))
    assert older["message"] == "Next batch of older messages retrieved successfully."
    assert [m["messageId"] for m in older["data"]] == ids[:5][::-1]
    end = body(user1.get(f"/query/message/roomId/{room.room_id}/index/{ids[0]}"))
    assert end == {"success": True, "message": "No more older messages found.", "data": []}


def test_an_empty_room_has_an_empty_list_not_null(user1, room):
    project()
    assert body(user1.get(f"/query/message/roomId/{room.room_id}")) == {
        "success": True,
        "message": "No messages found for this room.",
        "data": [],
    }


def test_a_message_just_sent_is_readable_before_it_is_projected(user1, room):
    project()
    [sent] = send(room, 1)
    assert body(user1.get(f"/query/message/roomId/{room.room_id}"))["data"][0]["messageId"] == sent


@pytest.mark.parametrize("path", ROOM_ENDPOINTS)
def test_every_room_endpoint_refuses_non_members_with_a_json_403(outsider, room, path):
    send(room, 1, 2)
    project()
    response = outsider.get(path.format(r=room.room_id))
    assert response.status_code == 403
    cid = outsider.customer.customer_id
    assert response.json() == {
        "success": False,
        "message": f"Forbidden: Access Denied: Customer {cid} is not a participant of Room {room.room_id}",
        "data": None,
    }


def test_a_non_member_sees_nothing_of_other_peoples_rooms(outsider, room):
    project()
    assert body(outsider.get("/query/rooms"))["data"] == []


def test_online_status_lists_every_participant_in_order(user1, seeded, unique):
    from accounts.models import Customer

    # People of the test's own: the seeded ids recur across runs and may still be online.
    a, b = (
        Customer.objects.create_user(f"{n}-{unique}", "pw", full_name=n, email=f"{n}-{unique}@x.test") for n in "ab"
    )
    shared = do_create_room(1, NewRoom("Presence", [a.customer_id, b.customer_id]))
    presence.touch(a.customer_id, f"conn-{unique}")
    url = f"/query/onlineStatus/roomId/{shared.room_id}"
    try:
        data = body(user1.get(url))
        assert data["message"] == "Online statuses retrieved successfully."
        assert [(s["customerId"], s["online"]) for s in data["data"][:2]] == [
            (a.customer_id, True),
            (b.customer_id, False),
        ]
        assert data["data"][2]["customerId"] == 1
    finally:
        presence.leave(a.customer_id, f"conn-{unique}")
    assert body(user1.get(url))["data"][0]["online"] is False


def test_read_markers_list_every_participants_marker(user1, room):
    first, second = send(room, 1, 2)
    do_mark_read(2, ReadMarker(room.room_id, second))
    do_mark_read(1, ReadMarker(room.room_id, first))
    project()
    data = body(user1.get(f"/query/readMarkers/roomId/{room.room_id}"))
    assert data["message"] == "Read markers retrieved."
    markers = {m["customerId"]: m for m in data["data"]}
    assert markers[2]["lastReadMessageId"] == second
    assert markers[1]["lastReadMessageId"] == first
    assert all(isinstance(m["id"], str) and len(m["id"]) == 24 for m in markers.values())
    assert markers[2]["roomId"] == room.room_id


def test_a_marker_just_moved_is_listed_before_it_is_projected(user1, room):
    [sent] = send(room, 1)
    project()
    do_mark_read(2, ReadMarker(room.room_id, sent))
    markers = body(user1.get(f"/query/readMarkers/roomId/{room.room_id}"))["data"]
    assert [(m["customerId"], m["lastReadMessageId"]) for m in markers] == [(2, sent)]


def test_the_unread_flag_follows_reads_through_the_whole_path(user1, user2, room):
    [sent] = send(room, 1)
    project()
    assert body(user2.get("/query/rooms"))["data"][0]["unreadStatus"]["2"] is True
    user2.post("/command/read", {"roomId": room.room_id, "messageId": sent}, content_type="application/json")
    project()
    assert body(user2.get("/query/rooms"))["data"][0]["unreadStatus"]["2"] is False


@pytest.mark.parametrize("path", ["/query/rooms", *ROOM_ENDPOINTS])
def test_a_token_revoked_by_logout_is_refused_by_every_read(user1, room, path):
    send(room, 1, 2)
    project()
    assert user1.get(path.format(r=room.room_id)).status_code == 200
    token = user1.cookies["jwt_token"].value
    assert user1.post("/auth/logout").status_code == 200
    user1.cookies["jwt_token"] = token
    response = user1.get(path.format(r=room.room_id))
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication token expired or invalid."}
    assert response.cookies["jwt_token"]["max-age"] == 0


def test_a_rooms_last_message_says_when_it_is_the_rooms_note_of_a_change(user1, room):
    from chat_command.services import do_rename_room

    do_rename_room(2, room.room_id, "Renamed")
    behind = body(user1.get("/query/rooms"))["data"]  # not projected yet: from PostgreSQL
    project()
    projected = body(user1.get("/query/rooms"))["data"]
    for views in (behind, projected):
        [view] = [v for v in views if v["roomId"] == room.room_id]
        assert (view["roomName"], view["createdBy"]) == ("Renamed", 1)
        assert view["lastMessage"]["type"] == "system"
        assert view["lastMessage"]["senderId"] == 2

import dataclasses

import pytest

from chat_command.models import Message, OutboxEvent, Room, RoomParticipant

ROOM_OK = "Room command (Write) processed and event published successfully."
MESSAGE_OK = "Message command (Write) processed and event published successfully."
READ_OK = "Read Marker command (Write) processed and event published successfully."


def post(client, url, body, **headers):
    return client.post(url, body, content_type="application/json", **headers)


def events(type_name):
    return list(OutboxEvent.objects.filter(type=type_name).order_by("id"))


def test_creating_a_room_records_participants_and_one_room_created_event(user1, seeded):
    response = post(user1, "/command/room", {"roomName": " Team ", "targetCustomerIds": [3, 2]})
    assert response.status_code == 200
    body = response.json()
    assert (body["success"], body["message"]) == (True, ROOM_OK)
    room = Room.objects.get(room_id=body["data"])
    assert room.room_name == "Team"
    members = RoomParticipant.objects.filter(room=room).order_by("position")
    assert [m.customer_id for m in members] == [3, 2, 1]
    [event] = events("RoomCreated")
    assert event.topic == "chat-room-created"
    assert event.key == str(room.room_id)
    assert event.payload["roomName"] == "Team"
    assert event.payload["createdBy"] == 1
    assert [(p["id"], p["fullName"]) for p in event.payload["participants"]] == [
        (3, "Nguyễn Anh Quốc"),
        (2, "Huỳnh Đặng Tấn Phát"),
        (1, "Vũ Thanh Hải"),
    ]
    assert event.payload["createdAt"].endswith("Z")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"targetCustomerIds": [2]}, "roomName and targetCustomerIds cannot be empty."),
        ({"roomName": "   ", "targetCustomerIds": [2]}, "roomName and targetCustomerIds cannot be empty."),
        ({"roomName": "R"}, "roomName and targetCustomerIds cannot be empty."),
        (
            {"roomName": "R", "targetCustomerIds": [1, 2]},
            "targetCustomerIds should not contain the creator's customerId.",
        ),
        ({"roomName": "R", "targetCustomerIds": []}, "At least one target customer is required to create a room."),
        ({"roomName": "R", "targetCustomerIds": [2, 3, 2]}, "targetCustomerIds contains duplicate ids: 2."),
        ({"roomName": "R", "targetCustomerIds": [2, 999999]}, "Unknown customer ids: 999999."),
        ({"roomName": "R", "targetCustomerIds": ["2"]}, "targetCustomerIds must be a list of customer ids."),
        ({"roomName": "R", "targetCustomerIds": 2}, "targetCustomerIds must be a list of customer ids."),
        ({"roomName": "x" * 101, "targetCustomerIds": [2]}, "roomName must be at most 100 characters."),
        ({"roomName": "R", "targetCustomerIds": list(range(2, 102))}, "A room can have at most 100 participants."),
    ],
)
def test_bad_room_requests_are_400_and_create_nothing(user1, seeded, body, message):
    rooms_before = Room.objects.count()
    response = post(user1, "/command/room", body)
    assert response.status_code == 400
    assert response.json() == {"success": False, "message": message, "data": None}
    assert Room.objects.count() == rooms_before
    assert not events("RoomCreated")


def test_sending_a_message_returns_its_id_and_records_message_sent(user1, room):
    response = post(user1, "/command/message", {"roomId": room.room_id, "content": "  hello  "})
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == MESSAGE_OK
    message = Message.objects.get(message_id=body["data"]["messageId"])
    assert message.content == "  hello  "
    assert body["data"]["sentAt"].endswith("Z")
    [event] = events("MessageSent")
    assert (event.topic, event.key) == ("chat-message-sent", str(room.room_id))
    assert event.payload == {
        "roomId": room.room_id,
        "messageId": message.message_id,
        "senderId": 1,
        "senderFullName": "Vũ Thanh Hải",
        "content": "  hello  ",
        "sentAt": body["data"]["sentAt"],
        "seq": 1,
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"content": "hi"}, "roomId and content cannot be empty."),
        ({"roomId": 1}, "roomId and content cannot be empty."),
        ({"roomId": 1, "content": ""}, "roomId and content cannot be empty."),
        ({"roomId": 1, "content": " \n\t "}, "content cannot be blank."),
        ({"roomId": 1, "content": "x" * 4001}, "content must be at most 4000 characters."),
        ({"roomId": "1", "content": "hi"}, "roomId must be a positive whole number."),
        ({"roomId": 1, "content": 5}, "content must be a string."),
        (
            {"roomId": 1, "content": "hi", "clientMessageId": "k" * 65},
            "The idempotency key must be at most 64 characters.",
        ),
    ],
)
def test_bad_messages_are_400_and_store_nothing(user1, room, body, message):
    response = post(user1, "/command/message", body)
    assert response.status_code == 400
    assert response.json()["message"] == message
    assert not Message.objects.exists()
    assert not events("MessageSent")


def test_a_message_of_exactly_4000_characters_is_accepted(user1, room):
    assert post(user1, "/command/message", {"roomId": room.room_id, "content": "x" * 4000}).status_code == 200


def test_a_non_participant_cannot_send_and_the_room_is_untouched(outsider, room):
    response = post(outsider, "/command/message", {"roomId": room.room_id, "content": "intrusion"})
    assert response.status_code == 403
    cid = outsider.customer.customer_id
    assert response.json() == {
        "success": False,
        "message": f"Forbidden: Access Denied: Customer {cid} is not a participant of Room {room.room_id}",
        "data": None,
    }
    assert not Message.objects.exists()


def test_an_unknown_room_is_403_like_a_foreign_one(user1, seeded):
    response = post(user1, "/command/message", {"roomId": 987654, "content": "hi"})
    assert response.status_code == 403
    assert "is not a participant of Room 987654" in response.json()["message"]


@pytest.mark.parametrize("where", ["header", "body", "both"])
def test_a_retried_send_with_the_same_idempotency_key_returns_the_first_message(user1, room, where):
    body = {"roomId": room.room_id, "content": "once"}
    headers = {}
    if where in ("body", "both"):
        body["clientMessageId"] = "key-123"
    if where in ("header", "both"):
        headers["HTTP_IDEMPOTENCY_KEY"] = "key-123"
    first = post(user1, "/command/message", body, **headers).json()["data"]
    second = post(user1, "/command/message", body, **headers).json()["data"]
    assert first == second
    assert Message.objects.count() == 1
    assert len(events("MessageSent")) == 1


def test_differing_idempotency_keys_in_header_and_body_are_refused(user1, room):
    response = post(
        user1,
        "/command/message",
        {"roomId": room.room_id, "content": "x", "clientMessageId": "a"},
        HTTP_IDEMPOTENCY_KEY="b",
    )
    assert response.status_code == 400
    assert response.json()["message"] == "The Idempotency-Key header and clientMessageId differ."


def test_an_idempotency_key_reused_for_another_room_is_refused(user1, room):
    from chat_command.services import NewRoom, do_create_room

    other = do_create_room(1, NewRoom("Other", [3]))
    post(user1, "/command/message", {"roomId": room.room_id, "content": "x", "clientMessageId": "k"})
    response = post(user1, "/command/message", {"roomId": other.room_id, "content": "x", "clientMessageId": "k"})
    assert response.status_code == 400
    assert response.json()["message"] == "This idempotency key was already used for another room."


def test_different_senders_may_use_the_same_key(user1, user2, room):
    for client in (user1, user2):
        post(client, "/command/message", {"roomId": room.room_id, "content": "x", "clientMessageId": "same"})
    assert Message.objects.count() == 2


def _send(client, room, content="m"):
    return post(client, "/command/message", {"roomId": room.room_id, "content": content}).json()["data"]["messageId"]


def test_a_read_marker_moves_forward_once_and_records_one_event(user2, room, user1):
    first, second = _send(user1, room), _send(user1, room)
    response = post(user2, "/command/read", {"roomId": room.room_id, "messageId": second})
    assert response.json() == {"success": True, "message": READ_OK, "data": None}
    marker = RoomParticipant.objects.get(room=room, customer_id=2)
    assert marker.last_read_message_id == second
    assert post(user2, "/command/read", {"roomId": room.room_id, "messageId": first}).status_code == 200
    assert post(user2, "/command/read", {"roomId": room.room_id, "messageId": second}).status_code == 200
    marker.refresh_from_db()
    assert marker.last_read_message_id == second, "markers never move backwards"
    assert marker.joined_at == room.created_at, "a read marker does not overwrite joined_at"
    [event] = events("ReadMarkerUpdated")
    assert event.payload == {"roomId": room.room_id, "customerId": 2, "lastReadMessageId": second, "seq": 2}
    assert event.key == str(room.room_id)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"roomId": 1}, 400, "roomId and messageId cannot be empty."),
        ({"messageId": 1}, 400, "roomId and messageId cannot be empty."),
        ({"roomId": -1, "messageId": 1}, 400, "roomId and messageId must be positive whole numbers."),
    ],
)
def test_bad_read_markers_are_refused(user2, room, body, status, message):
    response = post(user2, "/command/read", body)
    assert (response.status_code, response.json()["message"]) == (status, message)


def test_a_read_marker_must_name_a_message_of_that_room(user1, user2, room):
    from chat_command.services import NewRoom, do_create_room

    elsewhere = do_create_room(1, NewRoom("Elsewhere", [2]))
    foreign = _send(user1, elsewhere)
    response = post(user2, "/command/read", {"roomId": room.room_id, "messageId": foreign})
    assert response.status_code == 400
    assert response.json()["message"] == f"Message {foreign} is not a message of Room {room.room_id}."
    assert not events("ReadMarkerUpdated")


def test_a_non_participant_cannot_move_a_read_marker(outsider, user1, room):
    message_id = _send(user1, room)
    response = post(outsider, "/command/read", {"roomId": room.room_id, "messageId": message_id})
    assert response.status_code == 403


def test_a_send_whose_event_cannot_be_written_leaves_no_message(user1, room, monkeypatch):
    from chat_command import outbox, services

    first = _send(user1, room)
    taken = OutboxEvent.objects.get(type="MessageSent").event_id
    real_row_for = outbox.row_for

    def row_with_a_used_event_id(event_type, payload):
        row = real_row_for(event_type, payload)
        return outbox.Row(dataclasses.replace(row.envelope, event_id=str(taken)), row.topic, row.key)

    monkeypatch.setattr(services.outbox, "row_for", row_with_a_used_event_id)
    user1.raise_request_exception = False
    response = post(user1, "/command/message", {"roomId": room.room_id, "content": "doomed"})
    assert response.status_code == 500
    assert response.json()["message"] == "An internal error occurred."
    assert list(Message.objects.values_list("message_id", flat=True)) == [first]
    assert len(events("MessageSent")) == 1


def test_a_transactional_send_that_fails_after_recording_its_event_leaves_neither(user1, room, monkeypatch):
    # The path SQLite takes (the embedded mode), run here on PostgreSQL.
    from chat_command import outbox, services

    real_record = outbox.record

    def record_then_fail(*events_):
        real_record(*events_)
        raise RuntimeError("crash after the event was recorded")

    monkeypatch.setattr(services.outbox, "record", record_then_fail)
    with pytest.raises(RuntimeError, match="crash after"):
        services._send_in_a_transaction(1, services.NewMessage(room.room_id, "doomed", None), None)
    assert not Message.objects.exists()
    assert not events("MessageSent")


def test_a_transactional_send_refuses_a_revoked_token(user1, room):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import RevokedToken
    from accounts.tokens import Principal
    from chat_command import services
    from infrastructure.http.errors import InvalidSessionToken

    def session(token_id: str) -> Principal:
        return Principal(1, "user1", "", token_id, expires_at=2**40, issued_at=int(timezone.now().timestamp()))

    RevokedToken.objects.create(token_id="ended", expires_at=timezone.now() + timedelta(hours=1))
    with pytest.raises(InvalidSessionToken):
        services._send_in_a_transaction(1, services.NewMessage(room.room_id, "too late", None), session("ended"))
    fine = services._send_in_a_transaction(1, services.NewMessage(room.room_id, "fine", None), session("other"))
    assert fine is not None
    assert list(Message.objects.values_list("content", flat=True)) == ["fine"]


def test_record_refuses_to_run_outside_a_transaction(transactional_db):
    from chat_command import outbox
    from chat_command.events import ReadMarkerUpdated

    with pytest.raises(RuntimeError, match=r"inside transaction\.atomic"):
        outbox.record(ReadMarkerUpdated(roomId=1, customerId=1, lastReadMessageId=1))


def test_seeding_creates_room_one_for_users_one_and_two_once(seeded):
    from chat_command.seed import seed_rooms

    assert seed_rooms() == ["Direct Chat 1-2"]
    assert seed_rooms() == []
    room = Room.objects.get()
    assert room.room_name == "Direct Chat 1-2"
    assert sorted(RoomParticipant.objects.filter(room=room).values_list("customer_id", flat=True)) == [1, 2]
    assert len(events("RoomCreated")) == 1


def test_a_send_outside_any_transaction_commits_message_and_event_in_one_statement(transactional_db):
    from django.db import connection

    from accounts.seed import seed_customers
    from chat_command.services import NewMessage, NewRoom, do_create_room, do_send_message
    from infrastructure.http.errors import Forbidden

    seed_customers()
    room = do_create_room(1, NewRoom("Autocommit", [2]))
    assert not connection.in_atomic_block
    sent = do_send_message(1, NewMessage(room.room_id, "alone", "key-1"))
    assert Message.objects.get(message_id=sent.message_id).content == "alone"
    [event] = events("MessageSent")
    assert (event.payload["messageId"], event.payload["senderFullName"]) == (sent.message_id, "Vũ Thanh Hải")
    assert do_send_message(1, NewMessage(room.room_id, "alone", "key-1")) == sent
    with pytest.raises(Forbidden):
        do_send_message(3, NewMessage(room.room_id, "not mine", None))
    assert Message.objects.count() == 1
    assert len(events("MessageSent")) == 1
    if connection.vendor == "postgresql":  # parsed and planned once per connection, not per send
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%chat_send_message(%'")
            assert cursor.fetchone() == (1,)


def _logged_out(client):
    """The client, still holding its session cookie after logging out elsewhere."""
    token = client.cookies["jwt_token"].value
    assert client.post("/auth/logout").status_code == 200
    client.cookies["jwt_token"] = token
    return client


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/command/message", {"content": "after logout"}),
        ("/command/message", {"content": "after logout", "clientMessageId": "k-after"}),
        ("/command/room", {"name": "after logout", "participantIds": [2]}),
        ("/command/read", {"messageId": None}),
    ],
)
def test_a_token_revoked_by_logout_is_refused_by_every_command_and_changes_nothing(user1, room, url, body):
    first = {"roomId": room.room_id, "content": "before", "clientMessageId": "k-after"}
    earlier = post(user1, "/command/message", first)
    body = {"roomId": room.room_id, **body}
    if url == "/command/read":
        body["messageId"] = earlier.json()["data"]["messageId"]
    counts = (Room.objects.count(), Message.objects.count(), OutboxEvent.objects.count())
    response = post(_logged_out(user1), url, body)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication token expired or invalid."}
    assert response.cookies["jwt_token"]["max-age"] == 0
    assert (Room.objects.count(), Message.objects.count(), OutboxEvent.objects.count()) == counts


@pytest.mark.parametrize(
    ("url", "body", "message"),
    [
        ("/command/message", {"roomId": 2**63, "content": "hi"}, "roomId must be at most 9223372036854775807."),
        ("/command/read", {"roomId": 1, "messageId": 2**63}, "messageId must be at most 9223372036854775807."),
    ],
)
def test_an_id_no_bigint_can_hold_is_refused_before_it_reaches_the_database(user1, room, url, body, message):
    response = post(user1, url, body)
    assert (response.status_code, response.json()["message"]) == (400, message)
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("url", "body", "message"),
    [
        ("/command/message", {"content": "nul \x00 inside"}, "content cannot"),
        ("/command/message", {"content": "unpaired \ud800 surrogate"}, "content cannot"),
        ("/command/room", {"roomName": "nul \x00 inside", "targetCustomerIds": [2]}, "roomName cannot"),
    ],
)
def test_text_no_column_can_store_is_refused_and_nothing_is_stored(user1, room, url, body, message):
    rooms_before = Room.objects.count()
    response = post(user1, url, {"roomId": room.room_id, **body})
    assert response.status_code == 400
    assert response.json()["message"] == f"{message} contain NUL characters or unpaired surrogates."
    assert (Room.objects.count(), Message.objects.count()) == (rooms_before, 0)

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

    room, first, _ = conversation
    refused = [
        operator.post(f"/admin/chat_command/message/{first.message_id}/change/", {"content": "rewritten"}),
        operator.post("/admin/chat_command/message/add/", {"content": "forged"}),
        operator.post(f"/admin/chat_command/room/{room.room_id}/change/", {"room_name": "renamed"}),
        operator.post(f"/admin/chat_command/room/{room.room_id}/delete/", {"post": "yes"}),
        operator.post("/admin/chat_command/room/add/", {"room_name": "made up"}),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    assert Message.objects.get(message_id=first.message_id).content == "needle in the haystack"
    assert Room.objects.get(room_id=room.room_id).room_name == "Operators' room"
    assert not OutboxEvent.objects.filter(type="MessageUpdated").exists()

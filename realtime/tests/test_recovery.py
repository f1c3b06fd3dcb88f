"""What a client that subscribes with since-message-id gets before the live messages."""

from __future__ import annotations

import pytest

from chat_command.services import NewMessage, NewRoom, do_create_room, do_send_message
from chat_query.store import active_store
from realtime.recovery import messages_after

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def stored(message_id: int, room_id: int, content: str, sent_at) -> dict:
    return {
        "_id": message_id,
        "roomId": room_id,
        "senderId": 1,
        "senderFullName": "User One",
        "content": content,
        "sentAt": sent_at,
    }


@pytest.fixture
def room(seeded, mongo_url):
    return do_create_room(1, NewRoom("Recovery", [2]))


def test_the_read_store_answers_when_it_holds_every_missed_message(room):
    sent = [do_send_message(1, NewMessage(room.room_id, f"m{n}", None)) for n in range(3)]
    active_store().messages.insert_many(
        [stored(m.message_id, room.room_id, f"from the store {n}", m.sent_at) for n, m in enumerate(sent)]
    )
    missed = messages_after(room.room_id, sent[0].message_id, 2)
    assert [(m["messageId"], m["content"]) for m in missed] == [
        (sent[1].message_id, "from the store 1"),
        (sent[2].message_id, "from the store 2"),
    ]


def test_postgresql_answers_when_the_store_lacks_one_even_if_it_holds_as_many(room):
    """Mid-batch, the store may hold a newer message while it still lacks an older one."""
    first, second = (do_send_message(1, NewMessage(room.room_id, text, None)) for text in ("first", "second"))
    active_store().messages.insert_many(
        [
            stored(first.message_id, room.room_id, "first", first.sent_at),
            stored(second.message_id + 1000, room.room_id, "committed after the count", second.sent_at),
        ]
    )
    missed = messages_after(room.room_id, 0, 2)
    assert [(m["messageId"], m["content"]) for m in missed] == [
        (first.message_id, "first"),
        (second.message_id, "second"),
    ]


def test_nothing_is_missed_after_the_newest_message(room):
    last = do_send_message(1, NewMessage(room.room_id, "only", None))
    assert messages_after(room.room_id, last.message_id, 2) == []


def test_nothing_newer_than_postgresql_holds_is_replayed(room):
    """A newer message comes live; replayed first, it would make an older live one look like a repeat."""
    only = do_send_message(1, NewMessage(room.room_id, "only", None))
    active_store().messages.insert_many(
        [
            stored(only.message_id, room.room_id, "only", only.sent_at),
            stored(only.message_id + 1000, room.room_id, "not committed when asked", only.sent_at),
        ]
    )
    assert [m["messageId"] for m in messages_after(room.room_id, 0, 2)] == [only.message_id]


def test_a_message_the_store_holds_in_an_older_state_is_replayed_as_it_is_now(room):
    from chat_command.services import do_edit_message, do_react

    sent = do_send_message(1, NewMessage(room.room_id, "before", None))
    active_store().messages.insert_one({**stored(sent.message_id, room.room_id, "before", sent.sent_at), "rev": 0})
    do_edit_message(1, sent.message_id, "after")
    do_react(2, sent.message_id, "👍", present=True)
    [missed] = messages_after(room.room_id, 0, 2)
    assert (missed["content"], missed["reactions"]) == ("after", [{"emoji": "👍", "customerIds": [2]}])
    assert missed["editedAt"] is not None
    assert missed["deleted"] is False


def test_a_message_the_store_holds_at_its_revision_is_replayed_from_the_store(room):
    from chat_command.services import do_delete_message

    sent = do_send_message(1, NewMessage(room.room_id, "gone soon", None))
    do_delete_message(1, sent.message_id)
    tombstone = {**stored(sent.message_id, room.room_id, "", sent.sent_at), "deleted": True, "rev": 1}
    active_store().messages.insert_one(tombstone)
    [missed] = messages_after(room.room_id, 0, 2)
    assert (missed["content"], missed["deleted"], missed["reactions"]) == ("", True, [])


def test_a_reader_removed_from_the_room_recovers_nothing_of_it(room):
    from chat_command.services import do_remove_participant

    do_send_message(1, NewMessage(room.room_id, "before the removal", None))
    do_remove_participant(1, room.room_id, 2)
    do_send_message(1, NewMessage(room.room_id, "after the removal", None))
    assert messages_after(room.room_id, 0, 2) is None
    assert [m["content"] for m in messages_after(room.room_id, 0, 1) or []][-1] == "after the removal"

"""Edit, delete and react: who may, what each stores, and the MessageUpdated each records."""

from datetime import timedelta
from urllib.parse import quote

import pytest

from chat_command.events import MessageUpdated
from chat_command.models import Message, OutboxEvent, Reaction
from chat_command.services import NewMessage, do_send_message

pytestmark = pytest.mark.django_db


def send(room, sender=1, content="hello") -> int:
    return do_send_message(sender, NewMessage(room.room_id, content, None)).message_id


def patch(client, message_id, body):
    return client.patch(f"/command/message/{message_id}", body, content_type="application/json")


def react(client, message_id, emoji, method="put"):
    return getattr(client, method)(f"/command/message/{message_id}/reactions/{quote(emoji, safe='')}")


def updates(message_id):
    rows = OutboxEvent.objects.filter(type="MessageUpdated", payload__messageId=message_id).order_by("id")
    return [row.payload for row in rows]


def refusal(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert (body["success"], body["data"]) == (False, None)
    return body["message"]


def test_the_sender_edits_and_the_event_carries_the_whole_message_at_its_next_revision(user1, room):
    message_id = send(room)
    response = patch(user1, message_id, {"content": "hello, edited"})
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    stored = Message.objects.get(message_id=message_id)
    assert (stored.content, stored.revision) == ("hello, edited", 1)
    assert data["messageId"] == message_id
    assert data["editedAt"].endswith("Z")
    [event] = updates(message_id)
    assert event == {
        "roomId": room.room_id,
        "change": "edited",
        "revision": 1,
        "messageId": message_id,
        "senderId": 1,
        "senderFullName": "Vũ Thanh Hải",
        "content": "hello, edited",
        "sentAt": event["sentAt"],
        "editedAt": data["editedAt"],
        "deleted": False,
        "reactions": [],
    }
    assert OutboxEvent.objects.get(type="MessageUpdated").topic == "chat-message-updated"


def test_the_same_text_again_changes_nothing_and_records_nothing(user1, room):
    message_id = send(room, content="same")
    assert patch(user1, message_id, {"content": "same"}).json()["data"] == {"messageId": message_id, "editedAt": None}
    assert updates(message_id) == []


def test_only_the_sender_may_edit_or_delete(user2, room):
    message_id = send(room, sender=1)
    assert "Only the sender" in refusal(patch(user2, message_id, {"content": "mine now"}), 403)
    assert "Only the sender" in refusal(user2.delete(f"/command/message/{message_id}"), 403)
    assert Message.objects.get(message_id=message_id).content == "hello"
    assert updates(message_id) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "content cannot be empty."),
        ({"content": ""}, "content cannot be empty."),
        ({"content": 5}, "content cannot be empty."),
        ({"content": "x" * 4001}, "content must be at most 4000 characters."),
    ],
)
def test_an_edit_follows_the_rules_of_a_send(user1, room, body, message):
    message_id = send(room)
    assert refusal(patch(user1, message_id, body), 400) == message
    assert Message.objects.get(message_id=message_id).revision == 0


def test_an_unknown_message_is_404(user1, seeded):
    for response in (
        patch(user1, 987654321, {"content": "x"}),
        user1.delete("/command/message/987654321"),
        react(user1, 987654321, "👍"),
        patch(user1, 2**70, {"content": "x"}),
    ):
        refusal(response, 404)


def test_an_edit_after_the_window_is_refused_and_0_means_no_window(user1, room, settings):
    message_id = send(room)
    sent_at = Message.objects.get(message_id=message_id).sent_at
    Message.objects.filter(message_id=message_id).update(sent_at=sent_at - timedelta(days=2))
    settings.MESSAGE_EDIT_WINDOW_SECONDS = 86400
    assert "can no longer be edited" in refusal(patch(user1, message_id, {"content": "late"}), 403)
    settings.MESSAGE_EDIT_WINDOW_SECONDS = 0
    assert patch(user1, message_id, {"content": "late"}).status_code == 200


def test_a_delete_leaves_a_tombstone_without_text_or_reactions_and_repeating_it_changes_nothing(user1, user2, room):
    message_id = send(room)
    assert react(user2, message_id, "👍").status_code == 200
    response = user1.delete(f"/command/message/{message_id}")
    assert response.status_code == 200, response.content
    stored = Message.objects.get(message_id=message_id)
    assert (stored.content, stored.deleted_at is not None, stored.revision) == ("", True, 2)
    assert not Reaction.objects.filter(message_id=message_id).exists()
    assert updates(message_id)[-1] | {"sentAt": "", "editedAt": None} == {
        **updates(message_id)[-1],
        "change": "deleted",
        "content": "",
        "deleted": True,
        "reactions": [],
        "revision": 2,
        "sentAt": "",
        "editedAt": None,
    }
    assert user1.delete(f"/command/message/{message_id}").status_code == 200
    assert len(updates(message_id)) == 2
    assert Message.objects.get(message_id=message_id).revision == 2


def test_a_deleted_message_can_be_neither_edited_nor_reacted_to(user1, room):
    message_id = send(room)
    user1.delete(f"/command/message/{message_id}")
    assert "was deleted" in refusal(patch(user1, message_id, {"content": "back"}), 409)
    assert "was deleted" in refusal(react(user1, message_id, "👍"), 409)


def test_reactions_are_idempotent_and_ordered_by_first_use(user1, user2, room):
    message_id = send(room)
    for client, emoji in ((user2, "🎉"), (user1, "👍"), (user2, "👍"), (user2, "👍"), (user1, ":thumbs_up:")):
        assert react(client, message_id, emoji).status_code == 200
    assert updates(message_id)[-1]["reactions"] == [
        {"emoji": "🎉", "customerIds": [2]},
        {"emoji": "👍", "customerIds": [1, 2]},
        {"emoji": ":thumbs_up:", "customerIds": [1]},
    ]
    assert len(updates(message_id)) == 4, "the repeated 👍 recorded nothing"
    assert react(user1, message_id, "👍", "delete").status_code == 200
    assert react(user1, message_id, "👍", "delete").status_code == 200
    assert updates(message_id)[-1]["reactions"][1] == {"emoji": "👍", "customerIds": [2]}
    assert len(updates(message_id)) == 5
    assert Message.objects.get(message_id=message_id).revision == 5


@pytest.mark.parametrize("emoji", ["👍🏽", "👨‍👩‍👧", "🇻🇳", "1️⃣", "❤️", ":+1:", ":a_b-c:"])
def test_any_single_emoji_or_short_name_is_a_reaction(user1, room, emoji):
    assert react(user1, send(room), emoji).status_code == 200


@pytest.mark.parametrize("emoji", ["👍👍", "a", "ab", ":Thumbs:", "::", ":" + "a" * 33 + ":", "1", "<b>"])
def test_anything_else_is_400_and_stores_nothing(user1, room, emoji):
    message_id = send(room)
    assert "emoji must be one emoji" in refusal(react(user1, message_id, emoji), 400)
    assert not Reaction.objects.exists()


def test_only_members_of_the_room_react(outsider, room):
    assert "is not a participant" in refusal(react(outsider, send(room), "👍"), 403)


def test_a_message_takes_at_most_twenty_kinds_of_reaction(user1, room):
    message_id = send(room)
    for n in range(20):
        assert react(user1, message_id, f":r{n}:").status_code == 200
    assert "20 different reactions" in refusal(react(user1, message_id, ":one_more:"), 409)
    assert react(user1, message_id, ":r0:", "delete").status_code == 200
    assert react(user1, message_id, ":one_more:").status_code == 200


def test_a_change_without_a_session_is_401(client, room):
    message_id = send(room)
    assert patch(client, message_id, {"content": "x"}).status_code == 401
    assert client.delete(f"/command/message/{message_id}").status_code == 401
    assert react(client, message_id, "👍").status_code == 401


def test_every_reaction_the_openapi_pattern_describes_is_accepted():
    import re

    from chat_command.serializers import EMOJI_PATTERN, check_emoji

    described = re.compile(EMOJI_PATTERN)
    samples = [chr(cp) for cp in range(0x1F300, 0x1FA00) if described.fullmatch(chr(cp))]
    assert len(samples) > 700
    for emoji in [*samples, ":a:", ":thumbs_up:"]:
        assert check_emoji(emoji) == emoji


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_concurrent_changes_of_one_message_get_one_revision_each_and_the_read_model_converges(seeded, mongo_url):
    import threading

    from django.db import connection

    from chat_command.selectors import message_state
    from chat_command.services import NewRoom, do_create_room, do_edit_message, do_react
    from chat_query.search import fold
    from chat_query.store import active_store
    from chat_query.tests.helpers import project

    room = do_create_room(1, NewRoom("Busy message", [2, 3]))
    message_id = send(room)
    errors = []

    def change(who: int) -> None:
        try:
            for n in range(5):
                if who == 1:
                    do_edit_message(1, message_id, f"edit {n}")
                do_react(who, message_id, ["👍", "🎉"][n % 2], present=n % 3 != 2)
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread's customer
            errors.append((who, exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=change, args=(who,)) for who in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    revisions = [u["revision"] for u in updates(message_id)]
    assert revisions == list(range(1, len(revisions) + 1)), "each change has a revision of its own, in commit order"
    truth = message_state(Message.objects.select_related("sender").get(message_id=message_id))
    assert truth["revision"] == revisions[-1]
    last = MessageUpdated(**updates(message_id)[-1]).fields()
    assert {k: v for k, v in last.items() if k != "change"} == truth

    project()
    stored = active_store().messages.find_one({"_id": message_id})
    assert (stored["rev"], stored["content"], stored["reactions"]) == (
        truth["revision"],
        truth["content"],
        truth["reactions"],
    )
    from chat_query.models import SearchEntry

    assert SearchEntry.objects.get(message_id=message_id).folded == fold(truth["content"])

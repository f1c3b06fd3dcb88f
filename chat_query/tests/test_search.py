"""GET /query/search against PostgreSQL's text search, fed as the projector feeds it."""

import pytest

from chat_command.services import NewMessage, NewRoom, do_create_room, do_delete_message, do_edit_message
from chat_command.services import do_send_message as _send
from chat_query import search
from chat_query.search import fold
from chat_query.tests.helpers import project

pytestmark = pytest.mark.integration


def send(room, content, sender=1) -> int:
    return _send(sender, NewMessage(room.room_id, content, None)).message_id


def found(client, **params):
    response = client.get("/query/search", params)
    assert response.status_code == 200, response.content
    return response.json()["data"]


def ids(client, **params):
    return [m["messageId"] for m in found(client, **params)]


def refused(client, status, **params):
    response = client.get("/query/search", params)
    assert response.status_code == status, response.content
    return response.json()["message"]


def test_text_is_folded_to_lower_case_without_accents_or_tone_marks():
    assert fold("Tiếng Việt ĐẸP Đà Nẵng") == "tieng viet dep da nang"


def test_english_words_match_by_their_stem_and_the_last_word_as_a_prefix(user1, room):
    running = send(room, "The deployments are running late")
    send(room, "nothing to see")
    project()
    assert ids(user1, q="deployment run") == [running]
    assert ids(user1, q="deplo") == [running]
    assert ids(user1, q="late deplo") == [running]
    assert ids(user1, q="deployments walking") == []


def test_vietnamese_text_is_found_with_or_without_its_marks(user1, room):
    vietnamese = send(room, "Tiếng Việt rất đẹp")
    project()
    assert ids(user1, q="tieng viet") == [vietnamese]
    assert ids(user1, q="Việt đẹp") == [vietnamese]
    assert ids(user1, q="dep") == [vietnamese]


def test_results_are_the_callers_rooms_newest_first_with_room_names(user1, room, seeded):
    elsewhere = do_create_room(2, NewRoom("Not for user1", [3]))
    first, second = send(room, "budget review"), send(room, "budget approved")
    send(elsewhere, "budget secret", sender=2)
    project()
    results = found(user1, q="budget")
    assert [m["messageId"] for m in results] == [second, first]
    assert {m["roomName"] for m in results} == {"Room of 1 and 2"}
    assert results[0] | {"sentAt": None} == {
        "messageId": second,
        "roomId": room.room_id,
        "senderId": 1,
        "senderFullName": "Vũ Thanh Hải",
        "content": "budget approved",
        "sentAt": None,
        "editedAt": None,
        "deleted": False,
        "reactions": [],
        "type": "user",
        "system": None,
        "roomName": "Room of 1 and 2",
    }


def test_pages_of_twenty_follow_the_before_cursor_and_a_room_filter(user1, room, seeded):
    other = do_create_room(1, NewRoom("Another", [3]))
    sent = [send(room, f"report {n}") for n in range(25)]
    in_other = send(other, "report elsewhere")
    project()
    first = ids(user1, q="report")
    assert first == [in_other, *sent[::-1][:19]]
    assert ids(user1, q="report", before=first[-1]) == sent[::-1][19:]
    assert ids(user1, q="report", roomId=other.room_id) == [in_other]


def test_an_edited_message_matches_its_new_text_only_and_a_deleted_one_never(user1, room):
    edited, deleted = send(room, "original wording"), send(room, "wording to delete")
    do_edit_message(1, edited, "replacement text")
    do_delete_message(1, deleted)
    project()
    assert ids(user1, q="wording") == []
    assert ids(user1, q="replacement") == [edited]
    assert found(user1, q="replacement")[0]["editedAt"] is not None


def test_a_room_of_someone_else_is_403(user1, seeded):
    elsewhere = do_create_room(2, NewRoom("Not for user1", [3]))
    assert "is not a participant" in refused(user1, 403, q="anything", roomId=elsewhere.room_id)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "q must be at least 2 characters."),
        ({"q": "a"}, "q must be at least 2 characters."),
        ({"q": "x" * 201}, "q must be at most 200 characters."),
        ({"q": "ok", "roomId": "one"}, "roomId must be a positive whole number."),
        ({"q": "ok", "before": "0"}, "before must be a positive whole number."),
    ],
)
def test_bad_queries_are_400(user1, seeded, params, message):
    assert refused(user1, 400, **params) == message


def test_a_query_without_letters_or_digits_finds_nothing(user1, room):
    send(room, "!! ??")
    project()
    assert found(user1, q="!!") == []


def test_search_needs_a_session(client, seeded):
    assert client.get("/query/search", {"q": "hello"}).status_code == 401


def test_a_rare_word_older_than_the_newest_messages_is_found_and_pages_stay_newest_first(user1, room, monkeypatch):
    # Past the caller's few newest messages a search goes on to the text index.
    monkeypatch.setattr(search, "RECENT", 3)
    rare = send(room, "the quarterly invoice")
    sent = [send(room, f"report {n}") for n in range(25)]
    project()
    assert ids(user1, q="invoice") == [rare]
    first = ids(user1, q="report")
    assert first == sent[::-1][:20]
    assert ids(user1, q="report", before=first[-1]) == sent[::-1][20:]


def test_an_edit_projected_after_its_message_was_indexed_replaces_it_and_a_replay_changes_nothing(user1, room):
    message = send(room, "first draft")
    project()
    do_edit_message(1, message, "final version")
    project()
    project()  # a replay of everything: the rows already hold these revisions
    assert ids(user1, q="draft") == []
    assert ids(user1, q="final") == [message]


def test_system_messages_are_found_as_system_messages_and_only_by_members(user1, user2, room):
    from chat_command.services import do_remove_participant, do_rename_room

    do_rename_room(2, room.room_id, "Quarterly planning")
    do_remove_participant(1, room.room_id, 2)
    project()
    [removal] = found(user1, q="removed")
    [rename] = found(user1, q="renamed quarterly")
    assert (removal["type"], removal["system"]["action"], removal["system"]["customerIds"]) == (
        "system",
        "removed",
        [2],
    )
    assert (rename["type"], rename["system"]["roomName"]) == ("system", "Quarterly planning")
    assert rename["roomName"] == "Quarterly planning"
    assert found(user2, q="quarterly") == [], "a removed member no longer searches the room"


@pytest.mark.django_db(transaction=True)
def test_the_projector_replaces_a_broken_postgresql_connection_instead_of_dead_lettering(seeded):
    """A PostgreSQL restart ends the projector's connection; its next batch must open a new one."""
    import psycopg
    from django.db import connection

    from chat_command.events import MessageSent
    from chat_command.models import OutboxEvent
    from chat_query.models import SearchEntry
    from chat_query.projector import Projector
    from infrastructure.messaging.consumers import handle_with_retries
    from infrastructure.messaging.events import Envelope

    room = do_create_room(1, NewRoom("Restarted", [2]))
    message_id = send(room, "after the restart")
    [payload] = OutboxEvent.objects.filter(type="MessageSent", payload__messageId=message_id).values_list(
        "payload", flat=True
    )
    projector = Projector()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
    where = connection.settings_dict
    with psycopg.connect(
        host=where["HOST"],
        port=where["PORT"],
        dbname=where["NAME"],
        user=where["USER"],
        password=where["PASSWORD"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    dead = []
    handle_with_retries(projector, [Envelope.new(MessageSent, payload)], lambda envelope, why: dead.append(why))
    assert dead == []
    assert SearchEntry.objects.filter(message_id=message_id).exists()

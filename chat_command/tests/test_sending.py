"""The send stated once (chat_command.sending): both ways of running it, and the installed function."""

import dataclasses

import pytest
from django.db import connection

from chat_command import sending, services
from chat_command.events import MessageSent
from chat_command.models import Message, OutboxEvent
from chat_command.services import NewMessage


def test_the_event_takes_each_of_its_fields_from_an_input_or_a_step():
    produced = set(sending.INPUTS) | {step.into for step in sending.SEND_STEPS}
    # A send is a user's message: a system message's kind and facts keep their defaults.
    system_only = {"type", "system"}
    assert set(sending.MESSAGE_SENT) == {field.name for field in dataclasses.fields(MessageSent)} - system_only
    assert set(sending.MESSAGE_SENT.values()) <= produced


def test_a_sends_inputs_are_the_declared_ones_in_their_order():
    assert list(sending.inputs(1, 2, "hi", None, None)) == list(sending.INPUTS)


def test_every_name_a_step_uses_is_an_input_or_an_earlier_steps_value():
    known = set(sending.INPUTS)
    for step in sending.SEND_STEPS:
        _, names = sending._positional(step, locks=True)
        assert set(names) <= known, step.into
        known.add(step.into)


def test_the_installed_send_function_is_the_one_the_steps_generate(db):
    assert sending.installed(connection) == (sending.function_body(), sending.fingerprint())


def test_install_replaces_an_outdated_send_function_and_leaves_other_versions_alone(db):
    with connection.cursor() as cursor:
        cursor.execute(f"COMMENT ON FUNCTION {sending.signature()} IS 'an older send'")
        # What an earlier version, still running during a rolling upgrade, may call.
        cursor.execute(
            f"CREATE FUNCTION {sending.FUNCTION}(p_room_id bigint) RETURNS bigint"
            " AS $$ SELECT p_room_id $$ LANGUAGE sql"
        )

    assert sending.install(connection) is True
    assert sending.installed(connection) == (sending.function_body(), sending.fingerprint())
    assert sending.install(connection) is False
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sending.FUNCTION}(7::bigint)")
        assert cursor.fetchone() == (7,)


def _send_both_ways(room_id: int, session=None) -> list[tuple[Message, OutboxEvent]]:
    """Send the same message through the steps one by one, then in one statement; what each stored."""
    stored = []
    for send in (services._send_in_a_transaction, services._send_in_one_statement):
        sent = send(1, NewMessage(room_id, "both ways", None), session)
        message = Message.objects.get(message_id=sent.message_id)
        event = OutboxEvent.objects.get(type="MessageSent", payload__messageId=sent.message_id)
        stored.append((message, event))
    return stored


def test_the_steps_one_by_one_and_the_one_statement_store_the_same_message_and_event(room):
    (message_a, event_a), (message_b, event_b) = _send_both_ways(room.room_id)

    assert (message_a.room_id, message_a.sender_id, message_a.content) == (
        message_b.room_id,
        message_b.sender_id,
        message_b.content,
    )
    assert message_b.message_id > message_a.message_id
    different = {"messageId", "sentAt", "seq"}
    assert (message_a.seq, message_b.seq) == (event_a.payload["seq"], event_b.payload["seq"]) == (1, 2)
    assert event_a.payload.keys() == event_b.payload.keys() == set(sending.MESSAGE_SENT)
    assert {k: v for k, v in event_a.payload.items() if k not in different} == {
        k: v for k, v in event_b.payload.items() if k not in different
    }
    assert event_b.payload["senderFullName"] == "Vũ Thanh Hải"
    for message, event in ((message_a, event_a), (message_b, event_b)):
        assert event.payload["messageId"] == message.message_id
        assert (event.topic, event.key, event.version) == (MessageSent.TOPIC, str(room.room_id), MessageSent.VERSION)


@pytest.mark.parametrize("send", [services._send_in_a_transaction, services._send_in_one_statement])
def test_both_ways_refuse_a_non_participant_and_store_nothing(seeded, send):
    from chat_command.services import NewRoom, do_create_room
    from infrastructure.http.errors import Forbidden

    room = do_create_room(2, NewRoom("Not for 1", [3]))
    with pytest.raises(Forbidden, match="Customer 1 is not a participant"):
        send(1, NewMessage(room.room_id, "not mine", None), None)
    assert not Message.objects.exists()
    assert not OutboxEvent.objects.filter(type="MessageSent").exists()

"""Write use cases: each validates fully, then makes one atomic change with its outbox events."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from accounts.auth import refuse_if_ended
from accounts.tokens import Principal
from chat_command import outbox, sending
from chat_command.events import (
    ADDED,
    LEFT,
    REMOVED,
    RENAMED,
    SYSTEM,
    MessageSent,
    MessageUpdated,
    ReadMarkerUpdated,
    RoomChanged,
    RoomCreated,
)
from chat_command.models import Message, Reaction, Room, RoomParticipant
from chat_command.selectors import BIGINT_MAX, message_state
from chat_command.serializers import (
    IDEMPOTENCY_KEY,
    REACTIONS_MAX,
    EditedMessageBody,
    NewMembersBody,
    NewMessageBody,
    NewRoomBody,
    ReadMarkerBody,
    RoomNameBody,
    check_emoji,
)
from customers import api as customers
from infrastructure.http.bodies import Invalid
from infrastructure.http.errors import BadRequest, Conflict, Forbidden, InvalidSessionToken, NotFound
from infrastructure.timeutil import iso, now_ms


def not_a_participant(customer_id: int, room_id: int) -> Forbidden:
    return Forbidden(f"Forbidden: Access Denied: Customer {customer_id} is not a participant of Room {room_id}")


# --- Rooms ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewRoom:
    name: str
    target_ids: list[int]


def check_new_room(body: Any, creator_id: int) -> NewRoom:
    room = NewRoomBody.parse(body, creator=creator_id)
    return NewRoom(room["roomName"], room["targetCustomerIds"])


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)


def do_create_room(creator_id: int, new_room: NewRoom) -> Room:
    """Create the room, its participants (targets in order, then the creator) and RoomCreated."""
    member_ids = [*new_room.target_ids, creator_id]
    names = customers.full_names(member_ids)
    unknown = [i for i in new_room.target_ids if i not in names]
    if unknown:
        raise BadRequest(f"Unknown customer ids: {_ids(unknown)}.", code="unknown_customer")
    created_at = now_ms()
    try:
        with transaction.atomic():
            room = Room.objects.create(room_name=new_room.name, created_by_id=creator_id, created_at=created_at)
            RoomParticipant.objects.bulk_create(
                RoomParticipant(room=room, customer_id=cid, position=n, joined_at=created_at)
                for n, cid in enumerate(member_ids)
            )
            participants = [{"id": cid, "fullName": names[cid], "joinedAt": iso(created_at)} for cid in member_ids]
            outbox.record(
                RoomCreated(
                    roomId=room.room_id,
                    roomName=room.room_name,
                    createdBy=creator_id,
                    createdAt=iso(created_at),
                    participants=participants,
                )
            )
    except IntegrityError:
        # A participant was deleted between the name lookup and the insert.
        raise BadRequest("A target customer no longer exists.", code="unknown_customer") from None
    return room


# --- Membership and names ------------------------------------------------------------------
# Each locks the room's row (as every send does), checks, changes, moves the room's revision on
# by one and records RoomChanged with the whole room, then the room's system message saying what
# happened, all in one transaction: sends and changes of membership are ordered by PostgreSQL.


def check_new_members(body: Any) -> list[int]:
    return list(NewMembersBody.parse(body)["customerIds"])


def check_room_name(body: Any) -> str:
    return str(RoomNameBody.parse(body)["roomName"])


def do_add_participants(actor_id: int, room_id: int, customer_ids: list[int]) -> list[int]:
    """Add the customers not in the room yet; return them. They have read up to the system
    message that announces them, and see the whole history."""
    names = customers.full_names([*customer_ids, actor_id])
    unknown = [i for i in customer_ids if i not in names]
    if unknown:
        raise BadRequest(f"Unknown customer ids: {_ids(unknown)}.", code="unknown_customer")
    with transaction.atomic():
        room, members = _locked_room(room_id, actor_id)
        new_ids = [i for i in customer_ids if i not in members]
        if not new_ids:
            return []
        limit = settings.ROOM_MAX_PARTICIPANTS
        if len(members) + len(new_ids) > limit:
            raise Conflict(f"Room {room_id} can hold at most {limit} participants.", code="room_full")
        joined_at = now_ms()
        last = max((m.position for m in members.values()), default=-1)
        try:
            RoomParticipant.objects.bulk_create(
                RoomParticipant(room=room, customer_id=cid, position=last + 1 + n, joined_at=joined_at)
                for n, cid in enumerate(new_ids)
            )
        except IntegrityError:
            raise BadRequest("A customer to add no longer exists.", code="unknown_customer") from None
        note = _record_room_change(room, ADDED, actor_id, new_ids)
        RoomParticipant.objects.filter(room=room, customer_id__in=new_ids).update(last_read_message_id=note.message_id)
        outbox.record(
            *(
                ReadMarkerUpdated(roomId=room_id, customerId=cid, lastReadMessageId=note.message_id, seq=note.seq)
                for cid in new_ids
            )
        )
    return new_ids


def do_remove_participant(actor_id: int, room_id: int, customer_id: int) -> None:
    """The room's creator removes someone; removing yourself is leaving."""
    if customer_id == actor_id:
        do_leave_room(actor_id, room_id)
        return
    with transaction.atomic():
        room, members = _locked_room(room_id, actor_id)
        if room.created_by_id != actor_id:
            raise Forbidden(f"Only the creator of Room {room_id} may remove people from it.", code="not_the_creator")
        if customer_id not in members:
            raise NotFound(f"Customer {customer_id} is not in Room {room_id}.", code="not_a_member")
        members[customer_id].delete()
        _record_room_change(room, REMOVED, actor_id, [customer_id])


def do_leave_room(customer_id: int, room_id: int) -> None:
    """The customer leaves; a room its last member left stays, reachable by no one."""
    with transaction.atomic():
        room, members = _locked_room(room_id, customer_id)
        members[customer_id].delete()
        _record_room_change(room, LEFT, customer_id, [customer_id])


def do_rename_room(actor_id: int, room_id: int, name: str) -> bool:
    """Give the room a new name; return False (and record nothing) when it already had it."""
    with transaction.atomic():
        room, _ = _locked_room(room_id, actor_id)
        if room.room_name == name:
            return False
        room.room_name = name
        _record_room_change(room, RENAMED, actor_id, [])
    return True


def _locked_room(room_id: int, actor_id: int) -> tuple[Room, dict[int, RoomParticipant]]:
    """The room, locked until the transaction ends, and its members by id; a 404 for no room,
    a 403 for an actor who is not in it. Members are read after the lock: as the change (or
    send) that held it left them."""
    room = None
    if room_id <= BIGINT_MAX:
        room = Room.objects.select_for_update().filter(pk=room_id).first()
    if room is None:
        raise NotFound(f"Room {room_id} does not exist.", code="unknown_room")
    members = {p.customer_id: p for p in RoomParticipant.objects.filter(room=room)}
    if actor_id not in members:
        raise not_a_participant(actor_id, room_id)
    return room, members


def _record_room_change(room: Room, change: str, actor_id: int, customer_ids: list[int]) -> Message:
    """Move the room's revision on, record RoomChanged with the room as it now is, then store
    its system message (sent in the actor's name) with its MessageSent; return the message."""
    room.revision += 1
    room.save(update_fields=["revision", "room_name"])
    participants = room_participants(room.room_id)
    outbox.record(
        RoomChanged(
            roomId=room.room_id,
            change=change,
            revision=room.revision,
            actorId=actor_id,
            customerIds=customer_ids,
            roomName=room.room_name,
            createdBy=room.created_by_id,
            createdAt=iso(room.created_at),
            participants=participants,
        )
    )
    facts = {"action": change, "actorId": actor_id, "customerIds": customer_ids, "roomName": room.room_name}
    found = customers.full_names([actor_id, *customer_ids])
    names = {i: found.get(i, f"customer {i}") for i in [actor_id, *customer_ids]}
    text = _described(change, names[actor_id], [names[i] for i in customer_ids], room.room_name)
    sent_at = now_ms()
    note = Message.objects.create(
        room=room,
        sender_id=actor_id,
        content=text,
        sent_at=sent_at,
        seq=sending.next_seq(room.room_id),
        kind=SYSTEM,
        system=facts,
    )
    outbox.record(
        MessageSent(
            roomId=room.room_id,
            messageId=note.message_id,
            senderId=actor_id,
            senderFullName=names[actor_id],
            content=text,
            sentAt=iso(sent_at),
            seq=note.seq,
            type=SYSTEM,
            system=facts,
        )
    )
    return note


def room_participants(room_id: int) -> list[dict[str, Any]]:
    """The room's participants as events carry them: [{id, fullName, joinedAt}], in the room's order."""
    rows = RoomParticipant.objects.filter(room_id=room_id).order_by("position").select_related("customer")
    return [{"id": p.customer_id, "fullName": p.customer.full_name, "joinedAt": iso(p.joined_at)} for p in rows]


def _described(change: str, actor: str, people: list[str], room_name: str) -> str:
    """A system message's text: what the actor did, in words."""
    if change == ADDED:
        return f"{actor} added {_listed(people)}."
    if change == REMOVED:
        return f"{actor} removed {_listed(people)}."
    if change == LEFT:
        return f"{actor} left the room."
    return f'{actor} renamed the room to "{room_name}".'


def _listed(names: list[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# --- Messages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    message_id: int
    room_id: int
    sent_at: datetime


@dataclass(frozen=True)
class NewMessage:
    room_id: int
    content: str
    client_message_id: str | None


def check_new_message(body: Any, idempotency_header: str | None) -> NewMessage:
    message = NewMessageBody.parse(body)
    key = _idempotency_key(message["clientMessageId"], idempotency_header)
    return NewMessage(message["roomId"], message["content"], key)


def _idempotency_key(from_body: str | None, from_header: str | None) -> str | None:
    """The send's idempotency key, from the body or the header (both, if they agree)."""
    header = (from_header or "").strip()
    if from_body and header and from_body != header:
        raise BadRequest("The Idempotency-Key header and clientMessageId differ.", code="invalid")
    if header:
        try:
            IDEMPOTENCY_KEY.check(header, {})
        except Invalid as error:
            raise IDEMPOTENCY_KEY.refusal("Idempotency-Key", error) from None
    return from_body or header or None


def do_send_message(sender_id: int, new: NewMessage, *, session: Principal | None = None) -> SentMessage:
    """Store the message and MessageSent together; a repeated idempotency key returns the first.

    `session` is the caller's token: if logout or deactivation ended it, nothing is stored or
    returned and InvalidSessionToken is raised. The steps are chat_command.sending's; on
    PostgreSQL they are one statement.
    """
    if new.client_message_id is not None:
        earlier = _earlier_send(sender_id, new, session)
        if earlier is not None:
            return earlier
    send = _send_in_one_statement if connection.vendor == "postgresql" else _send_in_a_transaction
    try:
        sent = send(sender_id, new, session)
    except IntegrityError:
        # The same key raced in from a concurrent retry: the one that committed is the answer.
        earlier = _earlier_send(sender_id, new, session) if new.client_message_id else None
        if earlier is None:
            raise
        return earlier
    return sent


def _refused(refusal: str, sender_id: int, room_id: int) -> Exception:
    if refusal == sending.SESSION_ENDED:
        return InvalidSessionToken()
    return not_a_participant(sender_id, room_id)


def _send_in_a_transaction(sender_id: int, new: NewMessage, session: Principal | None) -> SentMessage:
    """The send's steps one statement at a time, and its event through the outbox."""
    inputs = sending.inputs(sender_id, new.room_id, new.content, new.client_message_id, session)
    with transaction.atomic():
        values, refusal = sending.run_steps(inputs)
        if refusal is not None:
            raise _refused(refusal, sender_id, new.room_id)
        outbox.record(sending.event_of(values))
    return SentMessage(message_id=values[sending.RESULT], room_id=new.room_id, sent_at=inputs["sent_at"])


# The send path is the hottest write. On PostgreSQL it is one call of chat_send_message(),
# generated from the same steps (decision record 0006): a fifth of the round trips and half the
# database time of the steps one by one.
_SEND_SQL = sending.call_sql()


def _send_in_one_statement(sender_id: int, new: NewMessage, session: Principal | None) -> SentMessage:
    inputs = sending.inputs(sender_id, new.room_id, new.content, new.client_message_id, session)
    row = outbox.row_for(MessageSent, sending.known_payload(inputs))
    params = sending.call_params(inputs, row)
    # Alone, the statement is its own transaction. Inside a caller's transaction it gets a
    # savepoint, so a duplicate idempotency key leaves that transaction usable.
    savepoint = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    with savepoint, _prepared_cursor() as cursor:
        cursor.execute(_SEND_SQL, params, prepare=True)
        found = cursor.fetchone()
    if found is None:
        raise RuntimeError(f"{sending.FUNCTION}() answered no row")
    message_id, refusal = found
    if refusal is not None:
        raise _refused(refusal, sender_id, new.room_id)
    outbox.counted([row])
    return SentMessage(message_id=message_id, room_id=new.room_id, sent_at=inputs["sent_at"])


@contextlib.contextmanager
def _prepared_cursor() -> Iterator[psycopg.Cursor[Any]]:
    """A cursor that binds on the server, so the send statement is parsed and planned once
    per connection instead of once per call (a quarter of its database time).

    Django's cursors bind on the client, which cannot prepare. This one shares Django's
    connection and transaction, and Django's error wrapper turns psycopg's errors into
    django.db's (IntegrityError for a repeated idempotency key, OperationalError for an outage).
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _earlier_send(sender_id: int, new: NewMessage, session: Principal | None) -> SentMessage | None:
    earlier = Message.objects.filter(sender_id=sender_id, client_message_id=new.client_message_id).first()
    if earlier is None:
        return None
    if session is not None:
        refuse_if_ended(session)
    if earlier.room_id != new.room_id:
        raise BadRequest("This idempotency key was already used for another room.", code="idempotency_conflict")
    return SentMessage(message_id=earlier.message_id, room_id=earlier.room_id, sent_at=earlier.sent_at)


def _is_member(room_id: int, customer_id: int) -> bool:
    return RoomParticipant.objects.filter(room_id=room_id, customer_id=customer_id).exists()


# --- Read markers -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReadMarker:
    room_id: int
    message_id: int


def check_read_marker(body: Any) -> ReadMarker:
    marker = ReadMarkerBody.parse(body)
    return ReadMarker(marker["roomId"], marker["messageId"])


def do_mark_read(customer_id: int, marker: ReadMarker) -> bool:
    """Move the caller's read marker forward; return False (and record nothing) otherwise."""
    if not _is_member(marker.room_id, customer_id):
        raise not_a_participant(customer_id, marker.room_id)
    seq = Message.objects.filter(message_id=marker.message_id, room_id=marker.room_id).values_list("seq").first()
    if seq is None:
        raise BadRequest(f"Message {marker.message_id} is not a message of Room {marker.room_id}.", code="invalid")
    with transaction.atomic():
        moved = (
            RoomParticipant.objects.filter(room_id=marker.room_id, customer_id=customer_id)
            .exclude(last_read_message_id__gte=marker.message_id)
            .update(last_read_message_id=marker.message_id)
        )
        if moved:
            outbox.record(
                ReadMarkerUpdated(
                    roomId=marker.room_id, customerId=customer_id, lastReadMessageId=marker.message_id, seq=seq[0]
                )
            )
    return bool(moved)


# --- Edits, deletes and reactions ---------------------------------------------------------
# Each locks the message's row, checks, changes it, moves its revision on by one and records
# MessageUpdated with the whole message as it now is, all in one transaction.

EDITED, DELETED, REACTIONS = "edited", "deleted", "reactions"


def check_edit(body: Any) -> str:
    return str(EditedMessageBody.parse(body)["content"])


def do_edit_message(editor_id: int, message_id: int, content: str) -> Message:
    """Replace the text of the editor's own message; the same text again changes nothing."""
    with transaction.atomic():
        message = _locked(message_id)
        _refuse_unless_sender(message, editor_id, "edit")
        if message.deleted_at is not None:
            raise Conflict(f"Message {message_id} was deleted: it cannot be edited.", code="message_deleted")
        window = settings.MESSAGE_EDIT_WINDOW_SECONDS
        if window and (now_ms() - message.sent_at).total_seconds() > window:
            raise Forbidden(
                f"Message {message_id} can no longer be edited: the window is {window} seconds.", code="edit_too_late"
            )
        if content != message.content:
            message.content, message.edited_at = content, now_ms()
            _record_change(message, EDITED, "content", "edited_at")
    return message


def do_delete_message(deleter_id: int, message_id: int) -> None:
    """Leave a tombstone of the deleter's own message: no text, no reactions. Repeating it is a no-op."""
    with transaction.atomic():
        message = _locked(message_id)
        _refuse_unless_sender(message, deleter_id, "delete")
        if message.deleted_at is not None:
            return
        Reaction.objects.filter(message=message).delete()
        message.content, message.deleted_at = "", now_ms()
        _record_change(message, DELETED, "content", "deleted_at")


def do_react(customer_id: int, message_id: int, emoji: str, *, present: bool) -> None:
    """Add (present) or remove the customer's reaction; either is a no-op when already so."""
    emoji = check_emoji(emoji)
    with transaction.atomic():
        message = _locked(message_id)
        if not _is_member(message.room_id, customer_id):
            raise not_a_participant(customer_id, message.room_id)
        if message.deleted_at is not None:
            raise Conflict(f"Message {message_id} was deleted: it takes no reactions.", code="message_deleted")
        given = set(Reaction.objects.filter(message=message).values_list("emoji", "customer_id"))
        if ((emoji, customer_id) in given) == present:
            return
        if present:
            kinds = {kind for kind, _ in given}
            if emoji not in kinds and len(kinds) >= REACTIONS_MAX:
                raise Conflict(
                    f"Message {message_id} has {REACTIONS_MAX} different reactions already.", code="too_many_reactions"
                )
            Reaction.objects.create(message=message, customer_id=customer_id, emoji=emoji)
        else:
            Reaction.objects.filter(message=message, customer_id=customer_id, emoji=emoji).delete()
        _record_change(message, REACTIONS)


def _locked(message_id: int) -> Message:
    """The message, its row locked until the transaction ends, or a 404."""
    message = None
    if message_id <= BIGINT_MAX:  # a path id beyond a bigint names no message
        message = Message.objects.select_for_update(of=("self",)).select_related("sender").filter(pk=message_id).first()
    if message is None:
        raise NotFound(f"Message {message_id} does not exist.", code="unknown_message")
    return message


def _refuse_unless_sender(message: Message, customer_id: int, action: str) -> None:
    if message.kind == SYSTEM:
        raise Conflict(
            f"Message {message.message_id} is the room's record of a change: only its reactions change.",
            code="system_message",
        )
    if message.sender_id != customer_id:
        raise Forbidden(f"Only the sender of message {message.message_id} may {action} it.", code="not_the_sender")


def _record_change(message: Message, change: str, *fields: str) -> None:
    message.revision += 1
    message.save(update_fields=["revision", *fields])
    state = message_state(message)
    outbox.record(MessageUpdated(change=change, **state))

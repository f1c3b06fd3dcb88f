"""/command/room, /command/message (and a message's edits, deletion and reactions) and
/command/read: decode, call one service, encode."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import caller
from chat_command import services
from chat_command.serializers import (
    EMOJI_PATTERN,
    IDEMPOTENCY_KEY,
    EditedMessageBody,
    MemberRemovedAnswer,
    MembersAddedAnswer,
    MessageDeletedAnswer,
    MessageEditedAnswer,
    MessageSentAnswer,
    NewMembersBody,
    NewMessageBody,
    NewRoomBody,
    ReactionAnswer,
    ReadMarkerAnswer,
    ReadMarkerBody,
    RoomCreatedAnswer,
    RoomNameBody,
    RoomRenamedAnswer,
)
from infrastructure.http.answers import answers
from infrastructure.http.lean import lean_api_view
from infrastructure.http.responses import ok
from infrastructure.observability.metrics import counted_command
from infrastructure.timeutil import iso


@counted_command("CreateRoom")
@extend_schema(request=NewRoomBody, responses=answers(RoomCreatedAnswer, body=True))
@api_view(["POST"])
def create_room(request: Request) -> Response:
    me = caller(request).customer_id
    room = services.do_create_room(me, services.check_new_room(request.data, me))
    return ok("Room command (Write) processed and event published successfully.", room.room_id)


@counted_command("RenameRoom")
@extend_schema(
    request=RoomNameBody,
    responses=answers(RoomRenamedAnswer, 403, 404, body=True, path=True),
    description="Rename a room you take part in; everyone sees a system message saying so.",
)
@api_view(["PATCH"])
def rename_room(request: Request, room_id: int) -> Response:
    services.do_rename_room(caller(request).customer_id, room_id, services.check_room_name(request.data))
    return ok("Room renamed.")


@counted_command("AddParticipants")
@extend_schema(
    request=NewMembersBody,
    responses=answers(MembersAddedAnswer, 403, 404, 409, body=True, path=True),
    description="Add people to a room you take part in (at most 100 a call, ROOM_MAX_PARTICIPANTS in all);"
    " they see its whole history.",
)
@api_view(["POST"])
def add_participants(request: Request, room_id: int) -> Response:
    added = services.do_add_participants(caller(request).customer_id, room_id, services.check_new_members(request.data))
    return ok("Participants added." if added else "Everyone was already in the room.", added)


@counted_command("RemoveParticipant")
@extend_schema(
    responses=answers(MemberRemovedAnswer, 403, 404, path=True),
    description="The room's creator removes someone (your own id: you leave). They lose access at once.",
)
@api_view(["DELETE"])
def remove_participant(request: Request, room_id: int, customer_id: int) -> Response:
    services.do_remove_participant(caller(request).customer_id, room_id, customer_id)
    return ok("Participant removed.")


@counted_command("LeaveRoom")
@extend_schema(
    responses=answers(MemberRemovedAnswer, 403, 404, path=True),
    description="Leave the room: you lose access at once; a room its last member left stays, reachable by no one.",
)
@api_view(["DELETE"])
def leave_room(request: Request, room_id: int) -> Response:
    services.do_leave_room(caller(request).customer_id, room_id)
    return ok("You left the room.")


@counted_command("SendMessage")
@extend_schema(
    request=NewMessageBody,
    responses=answers(MessageSentAnswer, 403, body=True),
    parameters=[
        OpenApiParameter(
            "Idempotency-Key",
            IDEMPOTENCY_KEY.json_schema(),
            OpenApiParameter.HEADER,
            description="The send's idempotency key, instead of (or as well as) clientMessageId.",
        )
    ],
)
# The hottest endpoint: its common request is served without DRF's machinery (infrastructure/http/lean.py).
@lean_api_view(["POST"])
# Without SessionNotEnded: the send statement itself refuses a session that logout or deactivation ended.
@permission_classes([IsAuthenticated])
def send_message(request: Request) -> Response:
    new = services.check_new_message(request.data, request.headers.get("Idempotency-Key"))
    me = caller(request)
    sent = services.do_send_message(me.customer_id, new, session=me)
    return ok(
        "Message command (Write) processed and event published successfully.",
        {"messageId": sent.message_id, "sentAt": iso(sent.sent_at)},
    )


@counted_command("MarkRead")
@extend_schema(request=ReadMarkerBody, responses=answers(ReadMarkerAnswer, 403, body=True))
@api_view(["POST"])
def mark_read(request: Request) -> Response:
    services.do_mark_read(caller(request).customer_id, services.check_read_marker(request.data))
    return ok("Read Marker command (Write) processed and event published successfully.")


@counted_command("ChangeMessage")
@extend_schema(
    methods=["PATCH"],
    request=EditedMessageBody,
    responses=answers(MessageEditedAnswer, 403, 404, 409, body=True, path=True),
    description="Edit your own message (within MESSAGE_EDIT_WINDOW_SECONDS of sending it).",
)
@extend_schema(
    methods=["DELETE"],
    responses=answers(MessageDeletedAnswer, 403, 404, path=True),
    description="Delete your own message: it stays in the history as a tombstone.",
)
@api_view(["PATCH", "DELETE"])
def change_message(request: Request, message_id: int) -> Response:
    me = caller(request).customer_id
    if request.method == "DELETE":
        services.do_delete_message(me, message_id)
        return ok("Message deleted.")
    message = services.do_edit_message(me, message_id, services.check_edit(request.data))
    edited_at = None if message.edited_at is None else iso(message.edited_at)
    return ok("Message edited.", {"messageId": message.message_id, "editedAt": edited_at})


@counted_command("React")
@extend_schema(
    request=None,
    responses=answers(ReactionAnswer, 400, 403, 404, 409, path=True),
    description="Add (PUT) or remove (DELETE) your reaction: one emoji, URL-encoded, or a :short_name:.",
    parameters=[
        OpenApiParameter(
            "emoji",
            {"type": "string", "pattern": EMOJI_PATTERN},
            OpenApiParameter.PATH,
            description="One emoji (a single grapheme cluster, URL-encoded) or :short_name: ([a-z0-9_+-]{1,32}).",
        )
    ],
)
@api_view(["PUT", "DELETE"])
def reaction(request: Request, message_id: int, emoji: str) -> Response:
    present = request.method == "PUT"
    services.do_react(caller(request).customer_id, message_id, emoji, present=present)
    return ok("Reaction added." if present else "Reaction removed.")

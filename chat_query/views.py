"""The /query endpoints: membership from the source of truth, data from the read model."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import caller
from chat_command.api import require_participant
from chat_query import search, selectors
from chat_query.serializers import MessagesAnswer, ReadMarkersAnswer, RoomsAnswer, SearchAnswer
from infrastructure.http.answers import answers
from infrastructure.http.errors import BadRequest
from infrastructure.http.responses import ok, ok_rendered


# The room list and message pages check whether the session ended in their own PostgreSQL
# query (see chat_command.selectors), so they leave out the SessionNotEnded permission's round trip.
@extend_schema(responses=answers(RoomsAnswer))
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def rooms(request: Request) -> HttpResponse:
    me = caller(request)
    found = selectors.room_list_for(me)
    return ok_rendered("Rooms retrieved successfully." if found else "No rooms found for this user.", found)


@extend_schema(responses=answers(MessagesAnswer, 403, path=True))
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def latest_messages(request: Request, room_id: int) -> HttpResponse:
    me = caller(request)
    page = selectors.message_page(me, room_id)
    return ok_rendered("Latest messages retrieved successfully." if page else "No messages found for this room.", page)


@extend_schema(responses=answers(MessagesAnswer, 403, path=True))
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def older_messages(request: Request, room_id: int, before: int) -> HttpResponse:
    me = caller(request)
    page = selectors.message_page(me, room_id, before)
    return ok_rendered(
        "Next batch of older messages retrieved successfully." if page else "No more older messages found.", page
    )


@extend_schema(responses=answers(ReadMarkersAnswer, 403, path=True))
@api_view(["GET"])
def read_markers(request: Request, room_id: int) -> Response:
    require_participant(room_id, caller(request).customer_id)
    return ok("Read markers retrieved.", selectors.read_markers(room_id))


@extend_schema(
    responses=answers(SearchAnswer, 400, 403),
    parameters=[
        OpenApiParameter(
            "q",
            {"type": "string", "minLength": search.QUERY_MIN, "maxLength": search.QUERY_MAX},
            required=True,
            description="The words to find; the last one may be the start of a word.",
        ),
        OpenApiParameter("roomId", {"type": "integer", "minimum": 1}, description="Only this room of the caller's."),
        OpenApiParameter(
            "before", {"type": "integer", "minimum": 1}, description="Only messages older than this messageId."
        ),
    ],
)
@api_view(["GET"])
@permission_classes([IsAuthenticated])  # the room list's query refuses a session that ended
def search_messages(request: Request) -> HttpResponse:
    words = search.check_query(request.query_params.get("q"))
    room_id, before = _optional_id(request, "roomId"), _optional_id(request, "before")
    found = search.search(caller(request), words, room_id, before)
    return ok_rendered("Messages found." if found else "No messages found.", found)


def _optional_id(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise BadRequest(f"{name} must be a positive whole number.", code="invalid")
    return int(value)

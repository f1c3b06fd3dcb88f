"""The realtime app over HTTP: who in a room is online, and SockJS (its info, which
sockjs-client asks before choosing a transport, and the transports it falls back to when
WebSockets are unavailable: xhr-streaming, xhr-polling, eventsource, htmlfile; see
realtime/sockjs.py for the sessions they carry)."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import caller
from accounts.tokens import COOKIE_NAME
from chat_command.api import require_participant
from infrastructure.http.answers import answers
from infrastructure.http.errors import BadRequest, Forbidden, NotFound, error_response
from infrastructure.http.responses import ok
from realtime import selectors, sockjs
from realtime.origins import advertised_origins, request_allowed
from realtime.serializers import OnlineStatusesAnswer

NO_CACHE = "no-store, no-cache, no-transform, must-revalidate, max-age=0"
# htmlfile's callback is a name in the parent page, written into the document: nothing else.
CALLBACK = re.compile(r"^[A-Za-z0-9_.]{1,64}$")


@require_GET
def sockjs_info(request: HttpRequest) -> JsonResponse:
    # sockjs-client ignores "origins"; it states the policy the handshake enforces, not "*:*".
    origins = advertised_origins(request)
    response = JsonResponse(
        {"entropy": secrets.randbelow(2**31), "origins": origins, "cookie_needed": False, "websocket": True}
    )
    response["Cache-Control"] = NO_CACHE
    return response


@dataclass(frozen=True)
class Framing:
    """How a receiving transport writes SockJS frames into its response."""

    method: str
    content_type: str
    streaming: bool
    frame: Callable[[str], bytes]


def _line(frame: str) -> bytes:
    return frame.encode() + b"\n"


def _event(frame: str) -> bytes:
    # sockjs-client decodeURI()s each event's data: a literal % must arrive as %25.
    return b"data: " + frame.replace("%", "%25").encode() + b"\r\n\r\n"


def _script(frame: str) -> bytes:
    # Inside <script>, "</script>" in a message would end the script: <, > and & go as escapes.
    escaped = json.dumps(frame).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return b"<script>\np(" + escaped.encode() + b");\n</script>\r\n"


XHR_TYPE = "application/javascript; charset=UTF-8"
FRAMINGS = {
    "xhr": Framing("POST", XHR_TYPE, streaming=False, frame=_line),
    "xhr_streaming": Framing("POST", XHR_TYPE, streaming=True, frame=_line),
    "eventsource": Framing("GET", "text/event-stream; charset=UTF-8", streaming=True, frame=_event),
    "htmlfile": Framing("GET", "text/html; charset=UTF-8", streaming=True, frame=_script),
}
# The document htmlfile starts with: it calls the parent page's callback for each frame.
HTMLFILE_HEAD = """<!doctype html>
<html><head>
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    var c = parent.{callback};
    c.start();
    function p(d) {{c.message(d);}};
    window.onload = function() {{c.stop();}};
  </script>
"""


def _prelude(transport: str, request: HttpRequest) -> bytes:
    """What a receiving response starts with, before any frame: some browsers show nothing of a
    streaming response until a kilobyte or two arrived."""
    if transport == "xhr_streaming":
        return b"h" * 2048 + b"\n"
    if transport == "eventsource":
        return b"\r\n"
    if transport == "htmlfile":
        head = HTMLFILE_HEAD.format(callback=request.GET["c"]).encode()
        return head + b" " * max(1024 - len(head), 0) + b"\r\n\r\n"
    return b""


@xframe_options_sameorigin  # htmlfile runs in an iframe of the page that uses it
async def receive(request: HttpRequest, server: str, session: str, transport: str) -> HttpResponseBase:
    """A receiving request: it opens the session if it is new and carries frames to the client."""
    framing = FRAMINGS[transport]
    refused = _refused(request, framing.method)
    if refused is not None:
        return refused
    if transport == "htmlfile" and not CALLBACK.match(request.GET.get("c", "")):
        return error_response(BadRequest('The "c" parameter must name the callback (letters, digits, _ and .).'))
    scope = {"type": "http", "headers": [(b"cookie", request.META.get("HTTP_COOKIE", "").encode("latin-1"))]}
    try:
        found, opened = await sockjs.open_or_find(session, scope, request.COOKIES.get(COOKIE_NAME))
    except LookupError:
        return _no_session()
    response = StreamingHttpResponse(
        _stream(found, framing, opened, _prelude(transport, request)), content_type=framing.content_type
    )
    response["Cache-Control"] = NO_CACHE
    response["X-Accel-Buffering"] = "no"  # nginx passes each frame on at once
    return response


async def _stream(session: sockjs.HttpSession, framing: Framing, opening: bool, prelude: bytes) -> AsyncIterator[bytes]:
    if prelude:
        yield prelude
    async with aclosing(session.frames(framing.streaming, opening)) as frames:
        async for frame in frames:
            yield framing.frame(frame)


async def xhr_send(request: HttpRequest, server: str, session: str) -> HttpResponse:
    """Messages for the session: a JSON array of strings (STOMP frames)."""
    refused = _refused(request, "POST")
    if refused is not None:
        return refused
    found = sockjs.find(session, request.COOKIES.get(COOKIE_NAME))
    if found is None or found.closed:
        return _no_session()
    try:
        raw = request.body.decode()
    except UnicodeDecodeError:
        return error_response(BadRequest("The payload is not UTF-8."))
    if not raw:
        return error_response(BadRequest("Payload expected."))
    try:
        messages = sockjs.parse_messages(raw)
    except ValueError:
        return error_response(BadRequest("Broken JSON encoding: expected a JSON array of strings."))
    await found.post(messages)
    return HttpResponse(status=204, content_type="text/plain; charset=UTF-8")


def _refused(request: HttpRequest, method: str) -> HttpResponse | None:
    """The answer to a request the transport does not serve, or None to serve it."""
    if request.method == "OPTIONS":
        # A CORS preflight from a listed page is answered by corsheaders before this.
        response = HttpResponse(status=204)
        response["Allow"] = f"OPTIONS, {method}"
        response["Cache-Control"] = "public, max-age=31536000"
        return response
    if request.method != method:
        return HttpResponseNotAllowed([method, "OPTIONS"])
    if not request_allowed(request):
        return error_response(Forbidden("This page's origin may not use the chat's realtime transports."))
    return None


def _no_session() -> HttpResponse:
    return error_response(NotFound("No such SockJS session: open a new one."))


@extend_schema(responses=answers(OnlineStatusesAnswer, 403, path=True))
@api_view(["GET"])
def online_status(request: Request, room_id: int) -> Response:
    require_participant(room_id, caller(request).customer_id)
    statuses = selectors.online_statuses(room_id)
    return ok(
        "Online statuses retrieved successfully." if statuses else "No participants found for this room.", statuses
    )

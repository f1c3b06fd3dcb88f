"""The browser client's one page; everything it shows comes from the public API and STOMP."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

# Scripts, styles and sockets from this origin only: even text that slipped past escaping
# could not load or run anything.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Serve the chat client; it asks the API who is logged in."""
    response = render(request, "webui/index.html")
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Cache-Control"] = "no-store"
    return response

"""SockJS's info endpoint, which sockjs-client asks before it opens the WebSocket."""

from __future__ import annotations

import secrets

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from realtime.origins import advertised_origins


@require_GET
def sockjs_info(request: HttpRequest) -> JsonResponse:
    # sockjs-client ignores "origins"; it states the policy the handshake enforces, not "*:*".
    origins = advertised_origins(request)
    response = JsonResponse(
        {"entropy": secrets.randbelow(2**31), "origins": origins, "cookie_needed": False, "websocket": True}
    )
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0"
    return response

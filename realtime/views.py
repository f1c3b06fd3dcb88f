"""SockJS's info endpoint, which sockjs-client asks before it opens the WebSocket."""

from __future__ import annotations

import secrets

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def sockjs_info(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(
        {"entropy": secrets.randbelow(2**31), "origins": ["*:*"], "cookie_needed": False, "websocket": True}
    )
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0"
    return response

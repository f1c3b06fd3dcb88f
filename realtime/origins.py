"""Which browser pages may open a WebSocket: the server's own, and WEBSOCKET_ALLOWED_ORIGINS.

A browser sends the user's jwt_token cookie with a WebSocket handshake whichever page opens
it, and WebSockets have no CORS: without this check any site the user visits could speak
STOMP as them (cross-site WebSocket hijacking). Browsers always send Origin with a handshake,
so one without it comes from a client that is not a browser and has no ambient cookie to abuse.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host

from infrastructure.env import Origin, parse_origin
from infrastructure.http.net import client_scheme

logger = logging.getLogger(__name__)


class OriginCheck:
    """ASGI middleware: refuse a WebSocket handshake from another site's page with a 403, before the upgrade."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and not handshake_allowed(scope):
            logger.warning("Refused a WebSocket handshake from origin %r", _header(scope, b"origin"))
            await receive()  # websocket.connect
            # A close before the accept is answered with HTTP 403 (ASGI spec; daphne and uvicorn).
            await send({"type": "websocket.close"})
            return
        await self.application(scope, receive, send)


def handshake_allowed(scope: dict[str, Any]) -> bool:
    """Whether a WebSocket handshake comes from no page at all, the server's own, or a listed one."""
    return _allowed(_header(scope, b"origin"), lambda: _own_origin(scope))


def request_allowed(request: HttpRequest) -> bool:
    """The same, for a request of SockJS's HTTP transports, which carry the session instead."""
    return _allowed(request.headers.get("Origin"), lambda: parse_origin(_request_own_origin(request)))


def _allowed(sent: str | None, own: Callable[[], Origin | None]) -> bool:
    if sent is None:
        return True
    origin = parse_origin(sent)
    return origin is not None and (origin in _listed() or origin == own())


def advertised_origins(request: HttpRequest) -> list[str]:
    """The origins whose pages may open the WebSocket, for SockJS's info: this server's, then the listed ones."""
    return [_request_own_origin(request), *settings.WEBSOCKET_ALLOWED_ORIGINS]


def _request_own_origin(request: HttpRequest) -> str:
    forwarded_proto = request.headers.get("X-Forwarded-Proto")
    scheme = client_scheme(request.scheme or "http", request.META.get("REMOTE_ADDR", ""), forwarded_proto)
    return f"{scheme}://{request.get_host()}"


def sockjs_cors(sender: Any, request: HttpRequest, **kwargs: Any) -> bool:
    """Let corsheaders answer SockJS's requests (its info, its HTTP transports) for every listed
    page that may open the WebSocket; they carry the same session."""
    origin = request.headers.get("Origin")
    return request.path_info.startswith("/ws/chat/") and origin is not None and parse_origin(origin) in _listed()


def _own_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin the handshake was addressed to: its Host (one Django serves) and the client's scheme."""
    host = _header(scope, b"host") or ""
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    client = scope.get("client") or ("", 0)
    direct = "https" if scope.get("scheme") == "wss" else "http"
    return parse_origin(f"{client_scheme(direct, client[0], _header(scope, b'x-forwarded-proto'))}://{host}")


def _listed() -> frozenset[Origin]:
    return _parsed(tuple(settings.WEBSOCKET_ALLOWED_ORIGINS))


@functools.lru_cache(maxsize=8)
def _parsed(origins: tuple[str, ...]) -> frozenset[Origin]:
    """The listed origins, parsed once rather than at every handshake (settings checked each at start)."""
    return frozenset(origin for origin in map(parse_origin, origins) if origin is not None)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None

"""Gateway authentication: every request proves its identity with the `jwt_token` cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.tokens import COOKIE_NAME, InvalidToken, Principal, has_ended, identify, verify_token
from infrastructure.http.errors import AUTHENTICATION_REQUIRED, InvalidSessionToken, Unauthenticated


def principal_from_cookie(
    request: HttpRequest | Request, check: Callable[[str], Principal] = verify_token
) -> Principal | None:
    """The verified caller, None without a cookie; an invalid cookie raises InvalidSessionToken."""
    token = request.COOKIES.get(COOKIE_NAME)
    if not token:
        return None
    try:
        return check(token)
    except InvalidToken:
        raise InvalidSessionToken() from None


def require_principal(request: HttpRequest | Request) -> Principal:
    principal = principal_from_cookie(request)
    if principal is None:
        raise Unauthenticated(AUTHENTICATION_REQUIRED)
    return principal


def caller(request: Request) -> Principal:
    """The authenticated principal of a DRF request that passed IsAuthenticated."""
    user = request.user
    if not isinstance(user, Principal):
        raise Unauthenticated(AUTHENTICATION_REQUIRED)
    return user


class JwtCookieAuthentication(BaseAuthentication):
    """DRF authentication from the cookie; client-sent identity headers are never read.

    It proves who the caller is (signature and expiry); whether logout or deactivation has
    since ended the session is the SessionNotEnded permission's question.
    """

    def authenticate(self, request: Request) -> tuple[Principal, str] | None:
        principal = principal_from_cookie(request, check=identify)
        if principal is None:
            return None
        return principal, request.COOKIES[COOKIE_NAME]

    def authenticate_header(self, request: Request) -> str:
        return f'Cookie name="{COOKIE_NAME}"'


class SessionNotEnded(BasePermission):
    """Neither logout nor the customer's deactivation has ended the caller's token (a default
    permission, after IsAuthenticated). The send command and the hot reads leave it out: they
    check in the statement that does their work, which saves a round trip and leaves no gap
    between the check and the write.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if isinstance(principal, Principal):
            refuse_if_ended(principal)
        return True


def refuse_if_ended(principal: Principal) -> None:
    """Raise InvalidSessionToken when logout or deactivation ended this token's session."""
    if has_ended(principal):
        raise InvalidSessionToken()


class JwtCookieScheme(OpenApiAuthenticationExtension):
    """Documents the cookie in the OpenAPI schema."""

    target_class = JwtCookieAuthentication
    name = "jwtCookie"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME}

"""Gateway authentication: every request proves its identity with the `jwt_token` cookie."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.tokens import COOKIE_NAME, InvalidToken, Principal, verify_token
from chatproject.errors import AUTHENTICATION_REQUIRED, InvalidSessionToken, Unauthenticated


def principal_from_cookie(request: HttpRequest | Request) -> Principal | None:
    """The verified caller, None without a cookie; an invalid cookie raises InvalidSessionToken."""
    token = request.COOKIES.get(COOKIE_NAME)
    if not token:
        return None
    try:
        return verify_token(token)
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
    """DRF authentication from the cookie; client-sent identity headers are never read."""

    def authenticate(self, request: Request) -> tuple[Principal, str] | None:
        principal = principal_from_cookie(request)
        if principal is None:
            return None
        return principal, request.COOKIES[COOKIE_NAME]

    def authenticate_header(self, request: Request) -> str:
        return f'Cookie name="{COOKIE_NAME}"'


class JwtCookieScheme(OpenApiAuthenticationExtension):
    """Documents the cookie in the OpenAPI schema."""

    target_class = JwtCookieAuthentication
    name = "jwtCookie"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME}

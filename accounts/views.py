"""POST /auth/login and POST /auth/logout, with the reference's LoginResponse bodies."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.tokens import COOKIE_NAME
from infrastructure.http.answers import NOT_JSON, UNAVAILABLE
from infrastructure.http.bodies import STORABLE
from infrastructure.http.errors import LoginRequestInvalid
from infrastructure.http.net import client_address


class LoginResponse(serializers.Serializer[dict[str, str]]):
    """The reference's LoginResponse, which its auth service answered with, errors included."""

    message = serializers.CharField()
    details = serializers.CharField()


# DRF's CharField refuses NUL already; this says so in the schema.
NO_NUL = RegexValidator(rf"^{STORABLE}*$")


class LoginRequest(serializers.Serializer[dict[str, str]]):
    username = serializers.CharField(min_length=1, max_length=150, trim_whitespace=False, validators=[NO_NUL])
    password = serializers.CharField(min_length=1, max_length=256, trim_whitespace=False, validators=[NO_NUL])


LOGIN_ANSWERS = {
    200: OpenApiResponse(LoginResponse, "Logged in: the jwt_token cookie is set."),
    400: OpenApiResponse(LoginResponse, "The body is not JSON with a username and a password."),
    401: OpenApiResponse(LoginResponse, "Wrong username or password (it does not say which)."),
    415: NOT_JSON,
    429: OpenApiResponse(LoginResponse, "Too many failed logins for this username or address; see Retry-After."),
    503: UNAVAILABLE,
}


class LoginView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(request=LoginRequest, responses=LOGIN_ANSWERS)
    def post(self, request: Request) -> Response:
        try:
            form = LoginRequest(data=request.data)
        except ParseError:
            raise LoginRequestInvalid("The request body must be JSON with username and password.") from None
        if not form.is_valid():
            raise LoginRequestInvalid("username and password are required.")
        customer = services.check_credentials(
            form.validated_data["username"], form.validated_data["password"], client_address(request)
        )
        response = Response({"message": "Login successful", "details": "JWT token set in HttpOnly Cookie."})
        response.set_cookie(
            COOKIE_NAME,
            services.session_token_for(customer),
            max_age=settings.JWT_LIFETIME_SECONDS,
            path="/",
            httponly=settings.JWT_COOKIE_HTTPONLY,
            secure=settings.JWT_COOKIE_SECURE,
            samesite="Lax",
        )
        return response


class LogoutView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(LoginResponse, "Logged out: the jwt_token cookie is cleared."),
            503: UNAVAILABLE,
        },
    )
    def post(self, request: Request) -> Response:
        services.end_session(request.COOKIES.get(COOKIE_NAME))
        response = Response({"message": "Logout successful.", "details": "Cookie cleared."})
        response.delete_cookie(COOKIE_NAME, path="/", samesite="Lax")
        return response

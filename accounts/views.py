"""POST /auth/login and POST /auth/logout, with the reference's LoginResponse bodies."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.tokens import COOKIE_NAME
from infrastructure.http.errors import LoginRequestInvalid
from infrastructure.http.net import client_address

LoginResponse = inline_serializer(
    "LoginResponse", {"message": serializers.CharField(), "details": serializers.CharField()}
)


class LoginRequest(serializers.Serializer[dict[str, str]]):
    username = serializers.CharField(max_length=150, trim_whitespace=False)
    password = serializers.CharField(max_length=256, trim_whitespace=False)


class LoginView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(request=LoginRequest, responses={200: LoginResponse, 401: LoginResponse, 429: LoginResponse})
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

    @extend_schema(request=None, responses={200: LoginResponse})
    def post(self, request: Request) -> Response:
        services.end_session(request.COOKIES.get(COOKIE_NAME))
        response = Response({"message": "Logout successful.", "details": "Cookie cleared."})
        response.delete_cookie(COOKIE_NAME, path="/", samesite="Lax")
        return response

"""One error hierarchy, rendered as JSON everywhere: DRF views, plain views and middleware.

Two body shapes keep the reference's wire contract: errors the reference's gateway produced
(authentication, unknown routes) are `{"detail": ...}`; errors its services produced use the
GenericResponse envelope `{"success": false, "message": ..., "data": null}`. The machine
readable code travels in the `X-Error-Code` header so the bodies stay byte-compatible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

logger = logging.getLogger(__name__)

AUTHENTICATION_REQUIRED = "Authentication required. JWT Cookie not found."

GENERIC = "generic"
GATEWAY = "gateway"
LOGIN = "login"
# Raised by Django's own views (the admin among them) for a client's mistake.
DJANGO_CLIENT_ERRORS = (Http404, PermissionDenied, SuspiciousOperation)


class ApplicationError(Exception):
    """A failure a client can act on: it has a message, a code and an HTTP status."""

    status = 400
    code = "bad_request"
    style = GENERIC
    # A cookie the response deletes, for example an invalid session token.
    clears_cookie: str | None = None

    def __init__(self, message: str, *, code: str | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.data = data

    def body(self) -> dict[str, Any]:
        if self.style == GATEWAY:
            return {"detail": self.message}
        if self.style == LOGIN:
            return {"message": "Login failed", "details": self.message}
        return {"success": False, "message": self.message, "data": self.data}


class BadRequest(ApplicationError):
    pass


class Unauthenticated(ApplicationError):
    status = 401
    code = "unauthenticated"
    style = GATEWAY


class InvalidSessionToken(Unauthenticated):
    code = "invalid_token"
    clears_cookie = "jwt_token"

    def __init__(self) -> None:
        super().__init__("Authentication token expired or invalid.")


class LoginRejected(ApplicationError):
    status = 401
    code = "login_failed"
    style = LOGIN


class LoginRequestInvalid(LoginRejected):
    status = 400
    code = "invalid"


class Forbidden(ApplicationError):
    status = 403
    code = "forbidden"


class NotFound(ApplicationError):
    status = 404
    code = "not_found"


class Conflict(ApplicationError):
    status = 409
    code = "conflict"


class RouteNotFound(NotFound):
    code = "route_not_found"
    style = GATEWAY


class TooManyRequests(ApplicationError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None, style: str = GENERIC) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.style = style


class ServiceUnavailable(ApplicationError):
    status = 503
    code = "service_unavailable"


BACKEND_UNAVAILABLE = ServiceUnavailable("A backend is unavailable. Try again shortly.", code="backend_unavailable")


def backend_unavailable_errors() -> tuple[type[Exception], ...]:
    """What the datastores' clients raise when they cannot reach their server."""
    import pymongo.errors
    import redis.exceptions
    from django.db import InterfaceError, OperationalError

    return (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        OperationalError,
        InterfaceError,
        pymongo.errors.ConnectionFailure,
    )


def generic_body(message: str, data: Any = None) -> dict[str, Any]:
    return {"success": False, "message": message, "data": data}


def _decorate(response: HttpResponse, error: ApplicationError) -> None:
    response["X-Error-Code"] = error.code
    if isinstance(error, TooManyRequests):
        response["Retry-After"] = str(error.retry_after)
    if error.clears_cookie:
        response.delete_cookie(error.clears_cookie, path="/", samesite="Lax")


def error_response(error: ApplicationError) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.status, json_dumps_params={"ensure_ascii": False})
    _decorate(response, error)
    return response


def _validation_message(detail: Any) -> str:
    """Flatten DRF validation details into one sentence a person can act on."""
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            text = _validation_message(value)
            parts.append(text if field == "non_field_errors" else f"{field}: {text}")
        return " ".join(parts)
    if isinstance(detail, list):
        return " ".join(_validation_message(item) for item in detail)
    return str(detail)


def _from_drf(exc: drf.APIException) -> ApplicationError:
    if isinstance(exc, drf.NotAuthenticated):
        return Unauthenticated(AUTHENTICATION_REQUIRED)
    if isinstance(exc, drf.AuthenticationFailed):
        return InvalidSessionToken()
    if isinstance(exc, drf.Throttled):
        return TooManyRequests(str(exc.detail), retry_after=int(getattr(exc, "wait", None) or 1))
    if isinstance(exc, drf.ValidationError):
        return BadRequest(_validation_message(exc.detail), code="invalid")
    if isinstance(exc, drf.ParseError):
        return BadRequest(f"Malformed request body: {exc.detail}", code="malformed_body")
    error = ApplicationError(str(exc.detail), code=str(exc.default_code))
    error.status = exc.status_code
    return error


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render ApplicationError and DRF exceptions; let anything else reach the middleware."""
    if isinstance(exc, drf.APIException):
        error = _from_drf(exc)
    elif isinstance(exc, ApplicationError):
        error = exc
    else:
        from django.http import Http404

        if not isinstance(exc, Http404):
            return None
        error = NotFound("Not found.")
    response = Response(error.body(), status=error.status)
    _decorate(response, error)
    if isinstance(exc, drf.MethodNotAllowed):
        view = context.get("view")
        if view is not None:
            response["Allow"] = ", ".join(view.allowed_methods)
    return response


class JsonErrorMiddleware:
    """Guarantee that no error leaves the project as HTML, DEBUG or not."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        return self._as_json(response)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ApplicationError):
            return error_response(exception)
        if isinstance(exception, DJANGO_CLIENT_ERRORS):
            return None  # Django answers these with handler403/404/400 below: JSON 4xx, not a 500
        if isinstance(exception, backend_unavailable_errors()):
            # Not a bug: a datastore is down or restarting; the client may try again.
            logger.warning("%s %s: a backend is unavailable: %r", request.method, request.path, exception)
            return error_response(BACKEND_UNAVAILABLE)
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return internal_error_response()

    @staticmethod
    def _as_json(response: HttpResponse) -> HttpResponse:
        status = response.status_code
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        replacement = JsonResponse(generic_body(f"{phrase}."), status=status)
        for header in ("Allow", "Retry-After", "Location", "WWW-Authenticate"):
            if header in response:
                replacement[header] = response[header]
        return replacement


def internal_error_response() -> JsonResponse:
    return JsonResponse(generic_body("An internal error occurred."), status=500)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(NotFound("Not found."))


def handler500(request: HttpRequest) -> HttpResponse:
    return internal_error_response()


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(BadRequest("Bad request."))


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(Forbidden("Forbidden."))

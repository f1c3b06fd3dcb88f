"""Gateway semantics of the reference: routing by service prefix, authentication first."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from accounts.auth import require_principal
from infrastructure.http.errors import ApplicationError, RouteNotFound, error_response

SERVICES = ("auth", "customer", "command", "query")


def route_not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Answer every unrouted path as the reference's gateway did, as JSON.

    Under a known service prefix the cookie is checked first, so an anonymous caller learns
    nothing about which endpoints exist.
    """
    service, sep, _ = path.partition("/")
    if not sep:
        return error_response(RouteNotFound("Invalid path format. Expecting /<service_name>/<path>"))
    if service not in SERVICES:
        return error_response(RouteNotFound(f"Service '{service}' not found."))
    try:
        require_principal(request)
    except ApplicationError as error:
        return error_response(error)
    return error_response(RouteNotFound(f"No endpoint {request.method} /{path}."))

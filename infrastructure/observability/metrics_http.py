"""GET /metrics and the middleware that times every HTTP request by its URL pattern."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from infrastructure.http.errors import ApplicationError, Forbidden, error_response
from infrastructure.http.net import client_address
from infrastructure.observability import metrics


class MethodNotAllowed(ApplicationError):
    status = 405
    code = "method_not_allowed"


# The name of the URL pattern that catches every path no other pattern routes.
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served the request, never the raw path (bounded label values)."""
    match = request.resolver_match
    if match is None:
        return "unresolved"
    if match.url_name == UNMATCHED:
        return UNMATCHED
    return match.route or match.view_name or "unnamed"


class HttpMetricsMiddleware:
    """Observe each request's latency under its method, route pattern and status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in _METHODS else "OTHER"
        metrics.HTTP_LATENCY.labels(method, route_of(request), str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        presented = request.headers.get("Authorization", "")
        if hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            return True
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOW_FROM)


def metrics_endpoint(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition, to the allowed addresses or the bearer of METRICS_TOKEN."""
    if request.method not in ("GET", "HEAD"):
        return error_response(MethodNotAllowed("Use GET /metrics."))
    if not _allowed(request):
        return error_response(
            Forbidden(
                "Metrics are served to the addresses in METRICS_ALLOW_FROM or with the METRICS_TOKEN bearer token.",
                code="metrics_forbidden",
            )
        )
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)

"""No response of the project is ever an HTML error page."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path


def _explode(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def _forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


def _missing(request: HttpRequest) -> HttpResponse:
    raise Http404


urlpatterns = [path("explode", _explode), path("forbidden", _forbidden), path("missing", _missing)]


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("/auth", "Invalid path format. Expecting /<service_name>/<path>"),
        ("/billing/invoices", "Service 'billing' not found."),
    ],
)
def test_unknown_routes_get_the_gateways_json_404(client, url, detail):
    response = client.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": detail}


@pytest.mark.urls("infrastructure.tests.test_errors")
@pytest.mark.parametrize("debug", [False, True])
def test_an_unhandled_error_is_a_json_500_without_internals(client, debug, caplog):
    with override_settings(DEBUG=debug):
        client.raise_request_exception = False
        response = client.get("/explode")
    assert response.status_code == 500
    assert response.json() == {"success": False, "message": "An internal error occurred.", "data": None}
    assert "boom" not in response.content.decode()
    assert any("unhandled error on GET /explode" in r.message for r in caplog.records)


@pytest.mark.urls("infrastructure.tests.test_errors")
@pytest.mark.parametrize(("url", "status"), [("/forbidden", 403), ("/missing", 404)])
def test_djangos_own_client_errors_stay_json_4xx_not_500(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("debug", [False, True])
def test_a_disallowed_host_is_a_json_400(client, debug):
    with override_settings(DEBUG=debug):
        response = client.get("/healthz", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["success"] is False


def test_a_wrong_method_is_a_json_405(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == "GET"


@pytest.mark.integration
def test_a_request_while_redis_is_unreachable_is_a_json_503_not_a_500(user1, room, redis_url, monkeypatch, caplog):
    """Online status lives in Redis; with Redis away it cannot be answered. Signing in does not need it."""
    import redis

    from benchmarks.common import free_port
    from infrastructure import backends

    unreachable = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=None)
    monkeypatch.setattr(backends, "redis_client", lambda: unreachable)
    response = user1.get(f"/query/onlineStatus/roomId/{room.room_id}")
    assert response.status_code == 503
    assert response.json() == {
        "success": False,
        "message": "A backend is unavailable. Try again shortly.",
        "data": None,
    }
    assert response["X-Error-Code"] == "backend_unavailable"
    assert not [r for r in caplog.records if r.exc_info], "an outage is not logged as a bug, with a traceback"
    assert user1.get("/customer/info").status_code == 200, "the revoked-token list is in PostgreSQL"

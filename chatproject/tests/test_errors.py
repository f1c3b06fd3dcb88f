"""No response of the project is ever an HTML error page."""

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path


def _explode(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


urlpatterns = [path("explode", _explode)]


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


@pytest.mark.urls("chatproject.tests.test_errors")
@pytest.mark.parametrize("debug", [False, True])
def test_an_unhandled_error_is_a_json_500_without_internals(client, debug, caplog):
    with override_settings(DEBUG=debug):
        client.raise_request_exception = False
        response = client.get("/explode")
    assert response.status_code == 500
    assert response.json() == {"success": False, "message": "An internal error occurred.", "data": None}
    assert "boom" not in response.content.decode()
    assert any("unhandled error on GET /explode" in r.message for r in caplog.records)


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

"""Gateway semantics: authentication first, identity from the token only, JSON always."""

import json

import pytest

AUTH_REQUIRED = {"detail": "Authentication required. JWT Cookie not found."}

PROTECTED = [
    ("get", "/customer/info"),
    ("post", "/customer/info"),
    ("get", "/customer/info/customerId/1"),
    ("get", "/customer/fullName/customerId/1"),
    ("get", "/customer/info/phoneNumber/0901"),
    ("get", "/customer/info/fullName/user"),
    ("get", "/customer/test"),
    ("get", "/query/internal/rooms/customerId/1"),
    ("get", "/auth/whoami"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), PROTECTED)
def test_every_path_but_login_and_logout_needs_the_cookie(client, method, url):
    response = getattr(client, method)(url)
    assert response.status_code == 401
    assert response.json() == AUTH_REQUIRED


def test_a_client_sent_customer_id_header_is_ignored(user1):
    response = user1.get("/customer/info", HTTP_X_CUSTOMER_ID="2")
    assert response.json()["data"]["customerId"] == 1
    response = user1.post(
        "/customer/info",
        {"fullName": "Spoofed", "email": "s@example.test", "avatarColor": "#000000"},
        content_type="application/json",
        HTTP_X_CUSTOMER_ID="2",
    )
    assert response.json()["data"]["customerId"] == 1


def test_the_reference_internal_endpoints_are_not_routable(user1):
    for url in ("/query/internal/rooms/customerId/2", "/query/internal/valid/roomId/1/customerId/2"):
        response = user1.get(url)
        assert response.status_code == 404
        assert "detail" in response.json()


def test_cors_preflight_allows_the_configured_origins_with_credentials(client):
    response = client.options(
        "/customer/info",
        HTTP_ORIGIN="http://localhost:5500",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "http://localhost:5500"
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "content-type" in response["Access-Control-Allow-Headers"]


def test_cors_ignores_other_origins(client):
    response = client.options(
        "/customer/info", HTTP_ORIGIN="http://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert "Access-Control-Allow-Origin" not in response


def test_credentialed_responses_carry_cors_headers(user1):
    response = user1.get("/customer/info", HTTP_ORIGIN="http://127.0.0.1:5500")
    assert response["Access-Control-Allow-Origin"] == "http://127.0.0.1:5500"


def test_the_openapi_schema_describes_the_api(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    for route in ("/auth/login", "/auth/logout", "/customer/info", "/customer/info/customerId/{customer_id}"):
        assert route in schema["paths"]
    assert schema["components"]["securitySchemes"]["jwtCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "jwt_token",
    }
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_a_path_with_a_line_break_is_answered_as_an_unknown_route(user1):
    response = user1.get("/query/rooms%0Aand-more")
    assert response.status_code == 404
    assert response.json() == {"detail": "No endpoint GET /query/rooms\nand-more."}


NASTY_REQUESTS = [
    ("get", "/customer/info/customerId/abc", None),
    ("get", "/customer/info/customerId/-1", None),
    ("put", "/customer/info", "{}"),
    ("delete", "/auth/login", None),
    ("post", "/customer/info", "{broken"),
    ("post", "/customer/info", "[]"),
    ("post", "/customer/info", '"a string"'),
    ("get", "/%00", None),
    ("get", "/customer/info/fullName/" + "a" * 5000, None),
    ("get", "/customer/info/phoneNumber/%F0%9F%98%80%F0%9F%98%80%F0%9F%98%80", None),
]


@pytest.mark.parametrize(("method", "url", "body"), NASTY_REQUESTS)
def test_no_response_is_ever_html(user1, method, url, body):
    kwargs = {"content_type": "application/json", "data": body} if body is not None else {}
    response = getattr(user1, method)(url, **kwargs)
    assert response["Content-Type"].startswith("application/json"), (response.status_code, response.content[:200])
    assert 400 <= response.status_code < 500 or response.status_code == 200
    response.json()


def test_a_non_json_content_type_is_refused_clearly(user1):
    response = user1.post("/customer/info", "fullName=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["success"] is False

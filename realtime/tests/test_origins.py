"""Which pages may open a WebSocket with the user's cookie, and what SockJS's info tells them."""

import ipaddress

import pytest

from realtime.origins import handshake_allowed

LISTED = "http://localhost:5500"


@pytest.fixture(autouse=True)
def policy(settings):
    settings.ALLOWED_HOSTS = ["chat.example", "127.0.0.1"]
    settings.WEBSOCKET_ALLOWED_ORIGINS = [LISTED, "https://app.example"]
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.1")]


def handshake(origin, host="chat.example:8080", scheme="ws", client="203.0.113.5", forwarded_proto=None):
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if forwarded_proto:
        headers.append((b"x-forwarded-proto", forwarded_proto.encode()))
    return {"type": "websocket", "scheme": scheme, "headers": headers, "client": (client, 50000)}


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "http://chat.example.evil.example:8080", "https://chat.example:8080", "null", ""]
)
def test_it_refuses_a_page_of_another_origin(origin):
    assert not handshake_allowed(handshake(origin))


@pytest.mark.parametrize(
    "origin", ["http://chat.example:8080", "http://CHAT.example:8080", LISTED, "https://app.example:443"]
)
def test_it_accepts_the_servers_own_page_and_the_listed_ones(origin):
    assert handshake_allowed(handshake(origin))


def test_it_accepts_a_client_that_sends_no_origin():
    assert handshake_allowed(handshake(None))


def test_the_own_origin_takes_the_scheme_a_trusted_proxy_reports():
    behind_tls = handshake("https://chat.example", host="chat.example", client="10.0.0.1", forwarded_proto="https")
    assert handshake_allowed(behind_tls)
    assert handshake_allowed(handshake("https://chat.example", host="chat.example", scheme="wss"))
    spoofed = handshake("https://chat.example", host="chat.example", forwarded_proto="https")
    assert not handshake_allowed(spoofed), "X-Forwarded-Proto counts only from CHAT_TRUSTED_PROXIES"


def test_a_host_django_would_refuse_is_no_origin_of_ours():
    assert not handshake_allowed(handshake("http://rebound.example:8080", host="rebound.example:8080"))


def test_sockjs_info_advertises_the_servers_own_origin_and_the_listed_ones(client):
    answer = client.get("/ws/chat/info", HTTP_HOST="chat.example:8080")
    assert answer.json()["origins"] == ["http://chat.example:8080", LISTED, "https://app.example"]


@pytest.mark.parametrize("origin", [LISTED, "https://app.example"])
def test_sockjs_info_is_credentialed_cors_for_each_page_that_may_open_the_socket(client, origin):
    answer = client.get("/ws/chat/info", HTTP_HOST="chat.example:8080", HTTP_ORIGIN=origin)
    assert answer["Access-Control-Allow-Origin"] == origin
    assert answer["Access-Control-Allow-Credentials"] == "true"


def test_sockjs_info_gives_another_site_no_cors(client):
    answer = client.get("/ws/chat/info", HTTP_HOST="chat.example:8080", HTTP_ORIGIN="http://evil.example")
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer

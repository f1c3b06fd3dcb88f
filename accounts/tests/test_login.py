import jwt
import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from accounts.keys import load_public_key
from conftest import login

LOGIN_FAILED = {"message": "Login failed", "details": "Tên đăng nhập hoặc mật khẩu không đúng."}


def post_login(client, body):
    return client.post("/auth/login", body, content_type="application/json")


def test_login_sets_a_secure_by_default_session_cookie(client, seeded):
    response = post_login(client, {"username": "user1", "password": "123"})
    assert response.status_code == 200
    assert response.json() == {"message": "Login successful", "details": "JWT token set in HttpOnly Cookie."}
    cookie = response.cookies["jwt_token"]
    assert cookie["path"] == "/"
    assert cookie["max-age"] == 86400
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


def test_the_cookie_can_be_made_script_readable_for_the_reference_client(client, seeded):
    with override_settings(JWT_COOKIE_HTTPONLY=False):
        cookie = post_login(client, {"username": "user1", "password": "123"}).cookies["jwt_token"]
    assert cookie["httponly"] == ""


def test_the_token_carries_the_reference_claims(client, seeded):
    token = login(client, "user2", "1234").cookies["jwt_token"].value
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, load_public_key(), algorithms=["RS256"])
    assert claims["sub"] == "user2"
    assert claims["customerId"] == "2"
    assert claims["fullName"] == "Huỳnh Đặng Tấn Phát"
    assert claims["roles"] == [{"authority": "ROLE_USER"}]
    assert claims["exp"] - claims["iat"] == 86400


@pytest.mark.parametrize(
    "body",
    [{"username": "user1", "password": "wrong"}, {"username": "nobody-here", "password": "123"}],
)
def test_wrong_credentials_are_refused_without_saying_which_part_was_wrong(client, seeded, body):
    response = post_login(client, body)
    assert response.status_code == 401
    assert response.json() == LOGIN_FAILED
    assert "jwt_token" not in response.cookies


@pytest.mark.parametrize("body", [{}, {"username": "user1"}, {"username": "", "password": "x"}, ["user1", "123"]])
def test_incomplete_login_requests_are_400(client, seeded, body):
    response = post_login(client, body)
    assert response.status_code == 400
    assert response.json() == {"message": "Login failed", "details": "username and password are required."}


def test_a_malformed_login_body_is_400(client, seeded):
    response = client.post("/auth/login", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["message"] == "Login failed"


def test_repeated_failures_for_a_username_are_throttled_with_retry_after(client, seeded, unique):
    from accounts.models import Customer

    Customer.objects.create_user(f"victim-{unique}", "right", full_name="V", email=f"v-{unique}@example.test")
    for _ in range(settings.LOGIN_FAILURES_PER_USERNAME):
        assert post_login(client, {"username": f"victim-{unique}", "password": "nope"}).status_code == 401
    response = post_login(client, {"username": f"victim-{unique}", "password": "right"})
    assert response.status_code == 429
    assert response.json()["message"] == "Login failed"
    assert response.json()["details"].startswith("Too many failed login attempts. Try again in ")
    assert 0 < int(response["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW_SECONDS
    assert "jwt_token" not in response.cookies


def test_repeated_failures_from_one_address_are_throttled_across_usernames(client, seeded, unique):
    with override_settings(LOGIN_FAILURES_PER_ADDRESS=3):
        for n in range(3):
            post_login(client, {"username": f"guess-{unique}-{n}", "password": "x"})
        assert post_login(client, {"username": "user1", "password": "123"}).status_code == 429


def test_a_successful_login_clears_the_username_counter(client, seeded):
    for _ in range(settings.LOGIN_FAILURES_PER_USERNAME - 1):
        post_login(client, {"username": "user3", "password": "bad"})
    login(client, "user3", "12345")
    for _ in range(settings.LOGIN_FAILURES_PER_USERNAME - 1):
        assert post_login(client, {"username": "user3", "password": "bad"}).status_code == 401


def test_logout_clears_the_cookie_and_revokes_the_token(client, seeded):
    token = login(client, "user1", "123").cookies["jwt_token"].value
    response = client.post("/auth/logout")
    assert response.status_code == 200
    assert response.json() == {"message": "Logout successful.", "details": "Cookie cleared."}
    assert response.cookies["jwt_token"].value == ""
    assert response.cookies["jwt_token"]["max-age"] == 0
    client.cookies["jwt_token"] = token
    replay = client.get("/customer/info")
    assert replay.status_code == 401
    assert replay.json() == {"detail": "Authentication token expired or invalid."}


def test_logout_without_a_session_still_succeeds(client):
    assert client.post("/auth/logout").status_code == 200


def test_login_and_logout_accept_only_post(client):
    response = client.get("/auth/login")
    assert response.status_code == 405
    assert response.json()["success"] is False


def test_migrating_keeps_the_revocations_made_while_redis_held_them(db, redis_url):
    """Before migration accounts 0002, logout wrote `revoked_jwt:<jti>` keys with the token's remaining life."""
    from importlib import import_module

    import redis
    from django.apps import apps
    from django.db import connection

    from accounts.models import RevokedToken

    old = redis.Redis.from_url(redis_url)
    old.set("revoked_jwt:before-the-upgrade", "1", ex=600)
    old.set("revoked_jwt:no-expiry-is-not-ours", "1")
    try:
        migration = import_module("accounts.migrations.0002_revoked_tokens")
        migration.copy_from_redis(apps, type("SchemaEditor", (), {"connection": connection})())
    finally:
        old.delete("revoked_jwt:before-the-upgrade", "revoked_jwt:no-expiry-is-not-ours")
    assert not RevokedToken.objects.filter(token_id="no-expiry-is-not-ours").exists()
    kept = RevokedToken.objects.get(token_id="before-the-upgrade")
    assert 590 <= (kept.expires_at - timezone.now()).total_seconds() <= 600


def test_logout_forgets_revocations_whose_tokens_have_expired(client, seeded):
    from datetime import timedelta

    from accounts.models import RevokedToken

    RevokedToken.objects.create(token_id="long-expired", expires_at=timezone.now() - timedelta(seconds=1))
    login(client, "user1", "123")
    client.post("/auth/logout")
    assert RevokedToken.objects.count() == 1, "the token just ended"
    assert not RevokedToken.objects.filter(token_id="long-expired").exists()

import random
import threading
from concurrent.futures import ThreadPoolExecutor

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


@pytest.fixture(params=["real", "embedded", "cluster"])
def redis_backend(request):
    """The Redis the throttle counts in: the configured server, the in-process one, a Redis Cluster."""
    from infrastructure import backends

    if request.param == "real":
        request.getfixturevalue("redis_url")
        yield request.param
        return
    if request.param == "cluster":
        request.getfixturevalue("backends_on_private_redis_cluster")
        yield request.param
        return
    backends.reset_clients()
    with override_settings(REDIS_URL=""):
        yield request.param
    backends.reset_clients()


CONCURRENT_GUESSES = 50


def test_concurrent_wrong_guesses_reach_the_password_check_at_most_the_limit_times(
    transactional_db, redis_backend, unique, monkeypatch
):
    from django.db import connections
    from django.test import Client

    from accounts import services
    from accounts.models import Customer

    username = f"target-{unique}"
    Customer.objects.create_user(username, "right", full_name="T", email=f"t-{unique}@example.test")
    state = threading.Condition()
    checked = []
    answered = []
    authenticate = services.authenticate

    def held_authenticate(**credentials):
        # Hold each password check until every other guess is held here too or has its answer:
        # the guesses pass the throttle together, the widest window a burst can open.
        with state:
            checked.append(credentials["username"])
            state.notify_all()
            state.wait_for(lambda: len(checked) + len(answered) == CONCURRENT_GUESSES, timeout=30)
        return authenticate(**credentials)

    monkeypatch.setattr(services, "authenticate", held_authenticate)
    start = threading.Barrier(CONCURRENT_GUESSES)
    network = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}"

    def guess(n: int) -> int:
        # An address each, so only the username's counter can stop them.
        client = Client(REMOTE_ADDR=f"{network}.{n + 1}")
        start.wait(30)
        try:
            status = post_login(client, {"username": username, "password": f"guess-{n}"}).status_code
        finally:
            connections.close_all()
        with state:
            answered.append(status)
            state.notify_all()
        return status

    with ThreadPoolExecutor(CONCURRENT_GUESSES) as pool:
        statuses = list(pool.map(guess, range(CONCURRENT_GUESSES)))
    limit = settings.LOGIN_FAILURES_PER_USERNAME
    assert len(checked) == limit
    assert sorted(statuses) == [401] * limit + [429] * (CONCURRENT_GUESSES - limit)


def test_a_successful_login_clears_the_username_counter(client, seeded):
    for _ in range(settings.LOGIN_FAILURES_PER_USERNAME - 1):
        post_login(client, {"username": "user3", "password": "bad"})
    login(client, "user3", "12345")
    for _ in range(settings.LOGIN_FAILURES_PER_USERNAME - 1):
        assert post_login(client, {"username": "user3", "password": "bad"}).status_code == 401


def test_successful_logins_do_not_count_against_their_address(client, seeded):
    with override_settings(LOGIN_FAILURES_PER_ADDRESS=2):
        for _ in range(3):
            login(client, "user1", "123")
        assert post_login(client, {"username": "user1", "password": "bad"}).status_code == 401


def test_a_password_check_that_fails_with_an_error_is_not_counted_as_a_guess(client, seeded, monkeypatch):
    from django.db import OperationalError

    from accounts import services

    def unreachable_database(**credentials):
        raise OperationalError("the database is restarting")

    with monkeypatch.context() as patched:
        patched.setattr(services, "authenticate", unreachable_database)
        for _ in range(settings.LOGIN_FAILURES_PER_USERNAME):
            assert post_login(client, {"username": "user2", "password": "1234"}).status_code == 503
    login(client, "user2", "1234")


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

    from django.apps import apps
    from django.db import connection

    from accounts.models import RevokedToken
    from infrastructure import backends

    old = backends.redis_client()
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

"""Only RS256 tokens signed with our key, unexpired and unrevoked, are accepted."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

from accounts.keys import load_private_key
from conftest import login

INVALID = {"detail": "Authentication token expired or invalid."}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides):
    now = int(time.time())
    return {"sub": "user1", "customerId": "1", "fullName": "x", "iat": now, "exp": now + 600, **overrides}


def _unsigned(claims) -> str:
    return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}."


def _hs256_with_public_key(claims) -> str:
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}"
    secret = settings.JWT_PUBLIC_KEY_PATH.read_bytes()
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _wrong_key(claims) -> str:
    return jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256")


def _expired(claims) -> str:
    return jwt.encode({**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"] - 3600}, load_private_key(), "RS256")


def _no_customer_id(claims) -> str:
    del claims["customerId"]
    return jwt.encode(claims, load_private_key(), algorithm="RS256")


@pytest.mark.parametrize("forge", [_unsigned, _hs256_with_public_key, _wrong_key, _expired, _no_customer_id])
def test_forged_or_expired_tokens_are_401_and_the_cookie_is_cleared(client, seeded, forge):
    client.cookies["jwt_token"] = forge(_claims())
    response = client.get("/customer/info")
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response.cookies["jwt_token"]["max-age"] == 0


def test_a_tampered_payload_is_rejected(client, seeded):
    header, payload, signature = login(client, "user1", "123").cookies["jwt_token"].value.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["customerId"] = "2"
    client.cookies["jwt_token"] = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    response = client.get("/customer/info")
    assert response.status_code == 401
    assert response.json() == INVALID


def test_a_valid_token_signed_with_our_key_is_accepted(client, seeded):
    client.cookies["jwt_token"] = jwt.encode(_claims(), load_private_key(), algorithm="RS256")
    assert client.get("/customer/info").json()["data"]["customerId"] == 1


def test_keys_are_loaded_once_per_process(client, seeded):
    load_private_key.cache_clear()
    for _ in range(3):
        login(client, "user1", "123")
    assert load_private_key.cache_info().misses == 1


def test_a_token_accepted_while_valid_is_refused_once_it_expires(client, seeded):
    # Signatures are checked once per token string; expiry must still be checked every time.
    now = int(time.time())
    expires = now + 2
    client.cookies["jwt_token"] = jwt.encode(_claims(iat=now, exp=expires), load_private_key(), algorithm="RS256")
    assert client.get("/customer/info").status_code == 200
    while time.time() < expires:  # until the expiry itself, not a guess at how long that takes
        time.sleep(0.05)
    response = client.get("/customer/info")
    assert response.status_code == 401
    assert response.json() == INVALID

"""Issue and verify the RS256 JWT carried in the `jwt_token` cookie."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass

import jwt
from django.conf import settings

from accounts.keys import load_private_key, load_public_key
from chatproject import backends

ALGORITHM = "RS256"
COOKIE_NAME = "jwt_token"
_REVOKED_PREFIX = "revoked_jwt:"


@dataclass(frozen=True)
class Principal:
    """The caller, as proven by a verified token; never taken from request headers."""

    customer_id: int
    username: str
    full_name: str
    token_id: str
    expires_at: int

    is_authenticated = True

    @property
    def pk(self) -> int:
        return self.customer_id


class InvalidToken(Exception):
    pass


def issue_token(*, customer_id: int, username: str, full_name: str, roles: str) -> str:
    """Sign the reference's claims (customerId as a string) plus a `jti` for revocation."""
    now = int(time.time())
    claims = {
        "sub": username,
        "customerId": str(customer_id),
        "fullName": full_name,
        "roles": [{"authority": role} for role in roles.split(",") if role],
        "iat": now,
        "exp": now + settings.JWT_LIFETIME_SECONDS,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, load_private_key(), algorithm=ALGORITHM)


def verify_token(token: str) -> Principal:
    """Return the principal of a valid, unexpired, unrevoked RS256 token or raise InvalidToken."""
    principal = _signed_principal(token)
    if principal.expires_at <= time.time():
        raise InvalidToken("Signature has expired")
    if principal.token_id and backends.redis_client().exists(_REVOKED_PREFIX + principal.token_id):
        raise InvalidToken("the token was revoked by logout")
    return principal


# Every request carries its token again; checking the signature and claims of the same
# string once is enough (about a quarter of a command's CPU otherwise). Expiry and
# revocation change with time, so verify_token checks them on every call. Refusals are not
# cached: lru_cache does not keep exceptions.
@functools.lru_cache(maxsize=4096)
def _signed_principal(token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            load_public_key(),
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "customerId"]},
        )
        customer_id = int(claims["customerId"])
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc
    return Principal(
        customer_id=customer_id,
        username=str(claims["sub"]),
        full_name=str(claims.get("fullName", "")),
        token_id=str(claims.get("jti", "")),
        expires_at=int(claims["exp"]),
    )


def revoke(principal: Principal) -> None:
    """Refuse this token from now until it would have expired anyway."""
    remaining = principal.expires_at - int(time.time())
    if principal.token_id and remaining > 0:
        backends.redis_client().set(_REVOKED_PREFIX + principal.token_id, "1", ex=remaining)

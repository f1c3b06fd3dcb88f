"""Issue and verify the RS256 JWT carried in the `jwt_token` cookie."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from django.conf import settings
from django.db import connection

from accounts.keys import load_private_key, load_public_key
from accounts.models import RevokedToken

ALGORITHM = "RS256"
COOKIE_NAME = "jwt_token"


@dataclass(frozen=True)
class Principal:
    """The caller, as proven by a verified token; never taken from request headers."""

    customer_id: int
    username: str
    full_name: str
    token_id: str
    expires_at: int
    issued_at: int = 0

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


SESSION_ENDED = "the session was ended by logout or deactivation"


def verify_token(token: str) -> Principal:
    """Return the principal of a valid, unexpired RS256 token whose session has not ended, or raise InvalidToken."""
    principal = identify(token)
    if has_ended(principal):
        raise InvalidToken(SESSION_ENDED)
    return principal


def verify_tokens(tokens: Sequence[str]) -> list[Principal | InvalidToken]:
    """verify_token of each token, in order: its principal, or why it is refused. The sessions
    are checked in one statement, for callers that verify many at once (STOMP CONNECTs)."""
    verified: list[Principal | InvalidToken] = []
    for token in tokens:
        try:
            verified.append(identify(token))
        except InvalidToken as refused:
            verified.append(refused)
    signed = [(n, p) for n, p in enumerate(verified) if isinstance(p, Principal)]
    for (n, _), ended in zip(signed, sessions_ended([p for _, p in signed]), strict=True):
        if ended:
            verified[n] = InvalidToken(SESSION_ENDED)
    return verified


def identify(token: str) -> Principal:
    """The principal of a validly signed, unexpired token, revoked or not; else InvalidToken.

    For a caller that checks whether the session ended itself, in the statement that acts on
    the token (chat_send_message); everyone else wants verify_token.
    """
    principal = _signed_principal(token)
    if principal.expires_at <= time.time():
        raise InvalidToken("Signature has expired")
    return principal


# Whether a token's session has ended, as one SQL expression of the token's id, its customer and
# its issue time: logout revoked the token, or its customer is deactivated or was since the token
# was issued (a deleted customer's requests find nothing of theirs, as the reference answered
# them). ENDED_SQL takes them as the parameters ended_params() gives, for the queries that check
# in passing (chat_command.selectors); the send (chat_command.sending) names its own.
def ended_sql(token_id: str, customer_id: str, issued_at: str) -> str:
    return (
        f"(EXISTS (SELECT 1 FROM revoked_tokens WHERE token_id = {token_id})"
        f" OR EXISTS (SELECT 1 FROM customers WHERE customer_id = {customer_id}"
        f" AND (NOT is_active OR tokens_not_before > {issued_at})))"
    )


ENDED_SQL = ended_sql("%s", "%s", "%s")


def ended_params(principal: Principal) -> list[str | int]:
    return [principal.token_id, principal.customer_id, principal.issued_at]


def has_ended(principal: Principal) -> bool:
    """Whether logout revoked this token or its customer's deactivation ended it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {ENDED_SQL}", ended_params(principal))
        row = cursor.fetchone()
    return bool(row and row[0])


# On PostgreSQL one text for any number of principals, their fields as three arrays: the driver
# converts a statement's text once and keeps it, and a text with a row of placeholders per
# principal was converted again for every batch (6% of a web process's CPU while clients
# connected). SQLite (the embedded default) has no arrays: a row of placeholders each there.
_CHECKED_ENDED = ended_sql("checked.token_id", "checked.customer_id", "checked.issued_at")
_SESSIONS_ENDED_SQL = (
    "SELECT checked.n FROM unnest(%s::text[], %s::bigint[], %s::bigint[])"
    f" WITH ORDINALITY AS checked (token_id, customer_id, issued_at, n) WHERE {_CHECKED_ENDED}"
)


def sessions_ended(principals: Sequence[Principal]) -> list[bool]:
    """has_ended of each principal, in order, in one statement."""
    if not principals:
        return []
    if connection.vendor == "postgresql":
        sql = _SESSIONS_ENDED_SQL
        params: list[Any] = [list(column) for column in zip(*(ended_params(p) for p in principals), strict=True)]
    else:
        rows = ", ".join(["(%s, %s, %s, %s)"] * len(principals))
        sql = f"WITH checked (n, token_id, customer_id, issued_at) AS (VALUES {rows}) SELECT n FROM checked"
        sql += f" WHERE {_CHECKED_ENDED}"
        params = [value for n, p in enumerate(principals, start=1) for value in (n, *ended_params(p))]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ended = {row[0] for row in cursor.fetchall()}
    return [n in ended for n in range(1, len(principals) + 1)]


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
        return Principal(
            customer_id=int(claims["customerId"]),
            username=str(claims["sub"]),
            full_name=str(claims.get("fullName", "")),
            token_id=str(claims.get("jti", "")),
            expires_at=int(claims["exp"]),
            issued_at=int(claims["iat"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc


def revoke(principal: Principal) -> None:
    """Refuse this token from now until it would have expired anyway; forget expired ones."""
    if not principal.token_id or principal.expires_at <= time.time():
        return
    expires_at = datetime.fromtimestamp(principal.expires_at, UTC)
    revoked = RevokedToken(token_id=principal.token_id, expires_at=expires_at)
    RevokedToken.objects.bulk_create([revoked], ignore_conflicts=True)
    RevokedToken.objects.filter(expires_at__lte=datetime.now(UTC)).delete()

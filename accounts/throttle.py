"""Failed-login throttle, counted per username and per client address in Redis."""

from __future__ import annotations

from django.conf import settings

from chatproject import backends
from chatproject.errors import LOGIN, TooManyRequests

_PREFIX = "login_failures:"


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    return [
        (f"{_PREFIX}user:{username.lower()}", settings.LOGIN_FAILURES_PER_USERNAME),
        (f"{_PREFIX}addr:{address}", settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def check_login_allowed(username: str, address: str) -> None:
    """Raise 429 while either counter is at its limit; the window restarts at its first failure."""
    client = backends.redis_client()
    pipe = client.pipeline()
    keys = _keys(username, address)
    for key, _ in keys:
        pipe.get(key)
        pipe.ttl(key)
    values = pipe.execute()
    for index, (_, limit) in enumerate(keys):
        count, ttl = values[2 * index], values[2 * index + 1]
        if count is not None and int(count) >= limit:
            raise TooManyRequests(
                f"Too many failed login attempts. Try again in {max(ttl, 1)} seconds.",
                retry_after=max(ttl, 1),
                code="login_throttled",
                style=LOGIN,
            )


def record_login_failure(username: str, address: str) -> None:
    pipe = backends.redis_client().pipeline()
    for key, _ in _keys(username, address):
        pipe.incr(key)
        pipe.expire(key, settings.LOGIN_FAILURE_WINDOW_SECONDS, nx=True)
    pipe.execute()


def forget_login_failures(username: str) -> None:
    backends.redis_client().delete(f"{_PREFIX}user:{username.lower()}")

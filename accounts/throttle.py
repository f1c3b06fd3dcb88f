"""Failed-login throttle, counted per username and per client address in Redis.

An attempt is counted as a failure before its password is checked, in the same script that
decides whether it may go on, so a burst of concurrent guesses gets no more checks than the
limit; a success or an error then takes its count back.

Every counter carries one hash tag: a script counts an attempt in both of its counters, and
Redis Cluster runs a script only over keys of one slot. Logins are few, so one slot holds them.
"""

from __future__ import annotations

from django.conf import settings

from infrastructure import backends, namespace
from infrastructure.http.errors import LOGIN, TooManyRequests

# KEYS: the counters. ARGV: the window in seconds, then each counter's limit.
# Returns 0 when the attempt is counted in every counter, else the seconds left in the window
# of the first counter at its limit (an attempt refused is not counted).
_COUNT_ATTEMPT = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then
    return math.max(redis.call('TTL', key), 1)
  end
end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  -- The window restarts at its first failure; a counter without one would lock out for good.
  if redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, ARGV[1])
  end
end
return 0
"""

# KEYS: the counters to take one attempt back from; a counter gone with its window stays gone.
_UNCOUNT_ATTEMPT = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then
    redis.call('DECR', key)
  end
end
return 0
"""


def _username_key(username: str) -> str:
    return namespace.tagged("login-failures", f"user:{username.lower()}")


def _address_key(address: str) -> str:
    return namespace.tagged("login-failures", f"addr:{address}")


def check_and_count_login_attempt(username: str, address: str) -> None:
    """Count this attempt as a failure, or raise 429 while either counter is at its limit."""
    keys = [_username_key(username), _address_key(address)]
    limits = [settings.LOGIN_FAILURES_PER_USERNAME, settings.LOGIN_FAILURES_PER_ADDRESS]
    retry_after = int(backends.run_script(_COUNT_ATTEMPT, keys, [settings.LOGIN_FAILURE_WINDOW_SECONDS, *limits]))
    if retry_after:
        raise TooManyRequests(
            f"Too many failed login attempts. Try again in {retry_after} seconds.",
            retry_after=retry_after,
            code="login_throttled",
            style=LOGIN,
        )


def record_login_success(username: str, address: str) -> None:
    """Forget the username's failures, and take back the address's count of this attempt."""
    forget_login_failures(username)
    backends.run_script(_UNCOUNT_ATTEMPT, [_address_key(address)], [])


def uncount_login_attempt(username: str, address: str) -> None:
    """Take back an attempt that ended before its password could be judged."""
    backends.run_script(_UNCOUNT_ATTEMPT, [_username_key(username), _address_key(address)], [])


def forget_login_failures(username: str) -> None:
    backends.redis_client().delete(_username_key(username))

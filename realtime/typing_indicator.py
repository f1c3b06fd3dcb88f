"""Typing indicators: per room and person, expiring 2 s after the last keystroke.

Start and stop are decided inside Redis (Lua), so each is announced once whichever web
process sees it; expiry is found by sweeping an index of deadlines, not by keyspace
notifications.
"""

from __future__ import annotations

import time

from infrastructure import backends, namespace

TYPING_TTL_S = 2.0

# KEYS: room set, index. ARGV: customer, deadline, now, index member. Returns 1 when typing starts.
_START = """
local alive = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
if alive and tonumber(alive) > tonumber(ARGV[3]) then return 0 end
return 1
"""

# KEYS: room set, index. ARGV: customer, now, index member, only-if-expired. Returns 1 when it stops.
_STOP = """
local alive = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not alive then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 0
end
if ARGV[4] == '1' and tonumber(alive) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
"""


def _keys(room_id: int) -> list[str]:
    return [namespace.key(f"typing:{room_id}"), _index()]


def _index() -> str:
    return namespace.key("typing_index")


def start(room_id: int, customer_id: int, *, now: float | None = None) -> bool:
    """Note a keystroke; True if this person just started typing in the room."""
    moment = time.time() if now is None else now
    member = f"{room_id}:{customer_id}"
    result = backends.redis_client().eval(
        _START, 2, *_keys(room_id), customer_id, moment + TYPING_TTL_S, moment, member
    )
    return bool(result)


def stop(room_id: int, customer_id: int, *, now: float | None = None) -> bool:
    """Note an explicit stop; True if the person was typing."""
    moment = time.time() if now is None else now
    result = backends.redis_client().eval(
        _STOP, 2, *_keys(room_id), customer_id, moment, f"{room_id}:{customer_id}", "0"
    )
    return bool(result)


def sweep(*, now: float | None = None) -> list[tuple[int, int]]:
    """Expire typing past its deadline; return the (room, customer) pairs that stopped."""
    moment = time.time() if now is None else now
    client = backends.redis_client()
    stopped = []
    for member in client.zrangebyscore(_index(), "-inf", moment):
        room, customer = (int(part) for part in str(member).split(":"))
        if client.eval(_STOP, 2, *_keys(room), customer, moment, str(member), "1"):
            stopped.append((room, customer))
    return stopped

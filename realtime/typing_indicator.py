"""Typing indicators: per room and person, expiring 2 s after the last keystroke.

Start and stop are decided inside Redis (Lua), so each is announced once whichever web
process sees it; expiry is found by sweeping an index of deadlines, not by keyspace
notifications.

A script touches a room's set and the index together, and Redis Cluster runs a script only
over keys of one slot. So the index is split into buckets, one per hash tag: a room's set
carries the tag of its bucket, and a sweep walks every bucket. The same names serve one Redis.
"""

from __future__ import annotations

import itertools
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


# Index buckets: enough to spread typing over a cluster's primaries, few enough that a sweep
# asks each of them in one pipelined round trip.
BUCKETS = 16


def _keys(room_id: int) -> list[str]:
    bucket = room_id % BUCKETS
    return [_tagged(bucket, f"room:{room_id}"), _index(bucket)]


def _index(bucket: int) -> str:
    return _tagged(bucket, "index")


def _tagged(bucket: int, name: str) -> str:
    return namespace.tagged(f"typing-{bucket}", name)


def start(room_id: int, customer_id: int, *, now: float | None = None) -> bool:
    """Note a keystroke; True if this person just started typing in the room."""
    moment = time.time() if now is None else now
    member = f"{room_id}:{customer_id}"
    result = backends.run_script(_START, _keys(room_id), [customer_id, moment + TYPING_TTL_S, moment, member])
    return bool(result)


def stop(room_id: int, customer_id: int, *, now: float | None = None) -> bool:
    """Note an explicit stop; True if the person was typing."""
    moment = time.time() if now is None else now
    result = backends.run_script(_STOP, _keys(room_id), [customer_id, moment, f"{room_id}:{customer_id}", "0"])
    return bool(result)


def sweep(*, now: float | None = None) -> list[tuple[int, int]]:
    """Expire typing past its deadline; return the (room, customer) pairs that stopped."""
    moment = time.time() if now is None else now
    client = backends.redis_client()
    pipe = client.pipeline(transaction=False)
    for bucket in range(BUCKETS):
        pipe.zrangebyscore(_index(bucket), "-inf", moment)
    stopped = []
    for member in itertools.chain.from_iterable(pipe.execute()):
        room, customer = (int(part) for part in str(member).split(":"))
        if backends.run_script(_STOP, _keys(room), [customer, moment, str(member), "1"]):
            stopped.append((room, customer))
    return stopped

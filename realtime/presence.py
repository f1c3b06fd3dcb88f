"""Presence per connection: a user is online while any of their connections is alive.

Each user has a sorted set of connection ids scored by their deadline (now + 120 s, renewed
by /app/extendOnline). Transitions are decided inside Redis by Lua scripts, so "came online"
and "went offline" are each reported exactly once, whichever web process saw them. Expiry
does not rely on keyspace notifications: any process may sweep the index of deadlines.

A script touches a user's keys and the index together, and Redis Cluster runs a script only
over keys of one slot. So the index is split into buckets, one per hash tag: a user's keys
carry the tag of their bucket, and a sweep walks every bucket. The same names serve one Redis.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable

from infrastructure import backends, namespace

ONLINE_TTL_S = 120

# KEYS: connections, announced-state, index. ARGV: connection, deadline, now, customer.
_TOUCH = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
redis.call('ZADD', KEYS[3], first[2], ARGV[4])
if redis.call('SET', KEYS[2], '1', 'NX') then return 1 end
return 0
"""

# KEYS: connections, announced-state, index. ARGV: connection ('' to only expire), now, customer.
_LEAVE = """
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[1] then
  redis.call('ZADD', KEYS[3], first[2], ARGV[3])
  return 0
end
redis.call('ZREM', KEYS[3], ARGV[3])
return redis.call('DEL', KEYS[2])
"""


# Index buckets: enough to spread presence over a cluster's primaries, few enough that a
# sweep asks each of them in one pipelined round trip.
BUCKETS = 16


def _keys(customer_id: int) -> list[str]:
    bucket = customer_id % BUCKETS
    return [_connections_key(customer_id), _tagged(bucket, f"state:{customer_id}"), _index(bucket)]


def _connections_key(customer_id: int) -> str:
    return _tagged(customer_id % BUCKETS, f"connections:{customer_id}")


def _index(bucket: int) -> str:
    return _tagged(bucket, "index")


def _tagged(bucket: int, name: str) -> str:
    return namespace.tagged(f"presence-{bucket}", name)


def touch(customer_id: int, connection_id: str, *, now: float | None = None) -> bool:
    """Mark a connection alive for another TTL; True if the user just came online."""
    return touch_all([(customer_id, connection_id)], now=now)[0]


def touch_all(connections: list[tuple[int, str]], *, now: float | None = None) -> list[bool]:
    """touch() of each (customer, connection), in order, in one pipelined round trip."""
    moment = time.time() if now is None else now
    calls = [
        (_keys(customer_id), [connection_id, moment + ONLINE_TTL_S, moment, customer_id])
        for customer_id, connection_id in connections
    ]
    return [bool(result) for result in backends.run_scripts(_TOUCH, calls)] if calls else []


def leave(customer_id: int, connection_id: str, *, now: float | None = None) -> bool:
    """Forget a connection; True if it was the user's last one (they went offline)."""
    return leave_all([(customer_id, connection_id)], now=now)[0]


def leave_all(connections: list[tuple[int, str]], *, now: float | None = None) -> list[bool]:
    """leave() of each (customer, connection), in order, in one pipelined round trip."""
    moment = time.time() if now is None else now
    calls = [(_keys(customer_id), [connection_id, moment, customer_id]) for customer_id, connection_id in connections]
    return [bool(result) for result in backends.run_scripts(_LEAVE, calls)] if calls else []


def sweep(*, now: float | None = None) -> list[int]:
    """Expire connections past their deadline; return the users who went offline."""
    moment = time.time() if now is None else now
    client = backends.redis_client()
    pipe = client.pipeline(transaction=False)
    for bucket in range(BUCKETS):
        pipe.zrangebyscore(_index(bucket), "-inf", moment)
    gone = []
    for member in itertools.chain.from_iterable(pipe.execute()):
        customer_id = int(str(member))
        if backends.run_script(_LEAVE, _keys(customer_id), ["", moment, customer_id]):
            gone.append(customer_id)
    return gone


def online_ids(customer_ids: Iterable[int], *, now: float | None = None) -> set[int]:
    moment = time.time() if now is None else now
    ids = list(customer_ids)
    pipe = backends.redis_client().pipeline(transaction=False)
    for customer_id in ids:
        pipe.zcount(_connections_key(customer_id), moment, "+inf")
    return {customer_id for customer_id, alive in zip(ids, pipe.execute(), strict=True) if alive}

"""Room membership for subscriptions and typing, from PostgreSQL, cached per process.

Only "is a member" is cached (nobody leaves a room here), so a room is usable the moment
it is created: a "no" is never remembered.
"""

from __future__ import annotations

import time

from channels.db import database_sync_to_async

from chat_command.selectors import is_participant

CACHE_SECONDS = 300.0
_members: dict[tuple[int, int], float] = {}


async def is_member(room_id: int, customer_id: int) -> bool:
    key = (room_id, customer_id)
    cached = _members.get(key)
    if cached is not None and time.monotonic() - cached < CACHE_SECONDS:
        return True
    # database_sync_to_async replaces a connection that broke (a PostgreSQL restart) before the next call.
    member = await database_sync_to_async(is_participant)(room_id, customer_id)
    if member:
        if len(_members) > 100_000:
            _members.clear()
        _members[key] = time.monotonic()
    return member

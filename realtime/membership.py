"""Room membership for subscriptions and typing, from PostgreSQL, cached per process.

Only "is a member" is cached, so a room is usable the moment it is created or someone is
added: a "no" is never remembered. A removal or a leave reaches every web process through
the hub's access group (realtime/hub.py), in the order of the room's messages, and forgets
the answer there. The cache is trusted only while that feed is heard: after a gap in it (Redis
failed) every answer comes from PostgreSQL until the hub hears the group again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from channels.db import database_sync_to_async

from chat_command.selectors import is_participant

CACHE_SECONDS = 300.0
MAX_REMEMBERED = 100_000
_members: dict[tuple[int, int], float] = {}
# Revocations heard so far, and for each (room, customer) the count when it was last revoked:
# an answer asked for before a revocation of its pair may predate the removal.
_heard = 0
_revoked: dict[tuple[int, int], int] = {}
# Every pair counts as revoked at this count: revocations were lost or forgotten.
_all_revoked_at = 0
_listening = False  # whether revocations reach this process now


async def is_member(room_id: int, customer_id: int) -> bool:
    """Whether the customer is in the room; never "yes" once a removal of theirs reached the process."""
    key = (room_id, customer_id)
    cached = _members.get(key)
    if _listening and cached is not None and time.monotonic() - cached < CACHE_SECONDS:
        return True
    asked = _heard
    # database_sync_to_async replaces a connection that broke (a PostgreSQL restart) before the next call.
    member = await database_sync_to_async(is_participant)(room_id, customer_id)
    if member and revoked_since(room_id, customer_id, asked):
        # PostgreSQL may have answered before the removal committed: the revocation is newer.
        return False
    if member and _listening:
        if len(_members) > MAX_REMEMBERED:
            _members.clear()
        _members[key] = time.monotonic()
    return member


def revocations_heard() -> int:
    """A mark to pass to revoked_since later."""
    return _heard


def revoked_since(room_id: int, customer_id: int, mark: int) -> bool:
    """Whether a revocation of the customer's access to the room was heard after `mark`."""
    return max(_revoked.get((room_id, customer_id), 0), _all_revoked_at) > mark


def revoke(room_id: int, customer_ids: Iterable[int]) -> None:
    """The customers left or were removed from the room: forget that they were in it."""
    global _heard, _all_revoked_at
    _heard += 1
    if len(_revoked) > MAX_REMEMBERED:
        _revoked.clear()
        _all_revoked_at = _heard
    for customer_id in customer_ids:
        _members.pop((room_id, customer_id), None)
        _revoked[(room_id, customer_id)] = _heard


def stop_listening() -> None:
    """Revocations may have been lost: forget every answer and cache none until listen()."""
    global _heard, _all_revoked_at, _listening
    _listening = False
    _heard += 1
    _all_revoked_at = _heard
    _members.clear()
    _revoked.clear()


def listen() -> None:
    """Revocations reach this process from now on: answers may be cached again."""
    global _listening
    _listening = True

"""A Redis cache in front of the read store for the two hot reads, rendered as JSON.

Message pages. A page is fixed by which messages it holds and the revision of each (a message
changes only by an edit, delete or reaction, each of which moves its revision on). Every read
already asks PostgreSQL for those (read-your-writes), and a page is cached under them: a page
that would differ has another key, so an entry can never be stale and nothing invalidates one.
A page is cached only when the read store held all of it.

Room views. A view changes with every message and read marker. The projector writes each view
it has just changed, and a reader that misses fills the entry from the read store; an entry
carries the view's revision, and an older revision never replaces a newer one, so a reader's
fill that raced the projector cannot undo it. Entries live under an epoch. Whoever may have
missed writing one (the projector when Redis failed a write, or at its start; a rebuild when
it switches generations) moves the epoch on, which orphans everything cached before; orphans
expire.

The cache is optional: when Redis fails, reads go to the read store and say so in the log.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any

from redis.exceptions import RedisError

from infrastructure import backends, namespace

logger = logging.getLogger(__name__)

# Long enough to serve a busy day's reads; short enough to bound what a Redis that lost its
# last second of writes (an append-only file synced every second) can show stale.
TTL_S = 600
_WARN_EVERY_S = 60.0

# KEYS: the epoch. ARGV: prefix, ttl, generation, whether to bump the lists' versions, then
# (room, revision, stored form, participants "a,b,c") quadruples. Stores each view unless the
# entry holds a newer revision (see ViewEntry for the stored form); a view the projector
# stores moves on the list version of each of its participants who has one.
_PUT_VIEWS = """
local prefix, ttl, generation, bump = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4] == '1'
local epoch = redis.call('GET', KEYS[1]) or '0'
for i = 5, #ARGV, 4 do
  local key = prefix .. ':view:' .. epoch .. ':' .. generation .. ':' .. ARGV[i]
  local current = redis.call('GET', key)
  if not current or tonumber(string.match(current, '^[^\\n]*\\n(%d+)\\n')) < tonumber(ARGV[i + 1]) then
    redis.call('SET', key, ARGV[i + 2], 'EX', ttl)
    if bump then
      for customer in string.gmatch(ARGV[i + 3], '%d+') do
        local version = prefix .. ':listver:' .. epoch .. ':' .. generation .. ':' .. customer
        if redis.call('EXISTS', version) == 1 then
          redis.call('INCR', version)
        end
      end
    end
  end
end
return epoch
"""

# KEYS: the epoch. ARGV: prefix, generation, customer, a random starting version, ttl.
# Returns the key of the customer's list at its current version (a version missing is created
# at the random value, so a version never comes back after its key expired) and the list
# cached there, if any.
_GET_LIST = """
local prefix, generation, customer = ARGV[1], ARGV[2], ARGV[3]
local epoch = redis.call('GET', KEYS[1]) or '0'
local version = prefix .. ':listver:' .. epoch .. ':' .. generation .. ':' .. customer
redis.call('SET', version, ARGV[4], 'NX')
redis.call('EXPIRE', version, tonumber(ARGV[5]))
local key = prefix .. ':list:' .. epoch .. ':' .. generation .. ':' .. customer .. ':' .. redis.call('GET', version)
return {key, redis.call('GET', key)}
"""

_last_warning = 0.0


def _prefix() -> str:
    """What every key of the cache starts with, in this deployment's namespace."""
    return namespace.key("readcache")


def _epoch() -> str:
    return f"{_prefix()}:epoch"


def _unavailable(what: str, exc: RedisError) -> None:
    """Log a failing cache once a minute, not once a request."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= _WARN_EVERY_S:
        _last_warning = now
        logger.warning("read cache unavailable (%s; Redis: %s): reading the read store", what, exc)


# --- Message pages -----------------------------------------------------------------------


def _page_key(generation: str, room_id: int, page: list[tuple[int, int]]) -> str:
    # A page is the newest messages below some point, so its first id, last id and size name
    # which messages it holds: a message committed late inside that range would change the last
    # id or the size. Revisions only grow, so their sum names the state they are in.
    first, last, revisions = page[0][0], page[-1][0], sum(r for _, r in page)
    return f"{_prefix()}:page:{generation}:{room_id}:{first}:{last}:{len(page)}:{revisions}"


def page(generation: str, room_id: int, page: list[tuple[int, int]]) -> list[str] | None:
    """The rendered messages of this page ((id, revision) of each), if cached."""
    try:
        found = backends.redis_client().get(_page_key(generation, room_id, page))
    except RedisError as exc:
        _unavailable("message page", exc)
        return None
    return None if found is None else str(found).split("\n")


def put_page(generation: str, room_id: int, page: list[tuple[int, int]], rendered: list[str]) -> None:
    # Rendered JSON never holds a raw newline, so one joins the messages.
    try:
        backends.redis_client().set(_page_key(generation, room_id, page), "\n".join(rendered), ex=TTL_S)
    except RedisError as exc:
        _unavailable("message page", exc)


# --- Room views --------------------------------------------------------------------------


class ViewEntry:
    """A view as cached: "updatedAt\nrevision\nJSON", and whose room lists show it.

    updatedAt comes first and is ISO-8601 of a fixed width, so stored forms sort by it as they
    are, and a reader takes the JSON from behind the second newline without decoding more.
    """

    __slots__ = ("participants", "rev", "stored")

    def __init__(self, rev: int, updated_at: str, rendered: str, participants: Iterable[int] = ()) -> None:
        self.rev = rev
        self.stored = f"{updated_at}\n{rev}\n{rendered}"
        self.participants = ",".join(str(p) for p in participants)


def json_of(stored: str) -> str:
    return stored[stored.index("\n", stored.index("\n") + 1) + 1 :]


def views(generation: str, room_ids: list[int]) -> dict[int, str]:
    """The stored forms of the cached views among these rooms."""
    if not room_ids:
        return {}
    client = backends.redis_client()
    try:
        epoch, prefix = str(client.get(_epoch()) or "0"), _prefix()
        found = client.mget([f"{prefix}:view:{epoch}:{generation}:{r}" for r in room_ids])
    except RedisError as exc:
        _unavailable("room views", exc)
        return {}
    return {r: str(s) for r, s in zip(room_ids, found, strict=True) if s is not None}


def put_views(generation: str, entries: Iterable[tuple[int, ViewEntry]], *, changed: bool = True) -> bool:
    """Store views unless newer revisions are there; False when Redis failed the write.

    `changed` says the views changed (the projector wrote them), which makes the room lists
    showing them stale; a reader filling what it missed passes False.
    """
    args: list[Any] = [_prefix(), TTL_S, generation, "1" if changed else "0"]
    for room_id, entry in entries:
        args += [room_id, entry.rev, entry.stored, entry.participants]
    if len(args) == 4:
        return True
    try:
        backends.run_script(_PUT_VIEWS, [_epoch()], args)
    except RedisError as exc:
        _unavailable("room views", exc)
        return False
    return True


# --- Room lists --------------------------------------------------------------------------


class RoomList:
    """A customer's cached room list: the key to store it under, and what was there."""

    __slots__ = ("body", "key", "rooms")

    def __init__(self, key: str | None, rooms: str | None, body: str | None) -> None:
        self.key, self.rooms, self.body = key, rooms, body


def room_list(generation: str, customer_id: int) -> RoomList:
    """The list cached for this customer at their list's current version, if any.

    Any view of theirs the projector writes moves the version on, so a list found here shows
    every view as the read store has it; which rooms it holds the caller checks itself.
    """
    try:
        key, found = backends.run_script(
            _GET_LIST, [_epoch()], [_prefix(), generation, customer_id, secrets.randbits(48), TTL_S + 60]
        )
    except RedisError as exc:
        _unavailable("room lists", exc)
        return RoomList(None, None, None)
    if found is None:
        return RoomList(key, None, None)
    rooms, body = str(found).split("\n", 1)
    return RoomList(str(key), rooms, body)


def put_room_list(listing: RoomList, rooms: str, body: str) -> None:
    if listing.key is None:
        return
    try:
        backends.redis_client().set(listing.key, f"{rooms}\n{body}", ex=TTL_S)
    except RedisError as exc:
        _unavailable("room lists", exc)


def forget_views() -> bool:
    """Orphan every cached view; False when Redis could not be told."""
    try:
        backends.redis_client().incr(_epoch())
    except RedisError as exc:
        _unavailable("room views", exc)
        return False
    return True

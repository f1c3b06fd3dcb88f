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

Redis Cluster runs a script only over the keys it is given (KEYS), all of one slot. So the
epoch and every view, list version and list carry one hash tag; a script is given the keys
named under the epoch this process saw last, writes or reads nothing unless that is still the
current one, and is sent again under the current one otherwise, so an entry is never read or
written under an epoch that has moved on. Message pages, read and written a key at a time,
carry no tag and spread over the cluster; views and lists share one primary. The same names
serve one Redis.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from redis.exceptions import RedisError

from infrastructure import backends, namespace

logger = logging.getLogger(__name__)

# Long enough to serve a busy day's reads; short enough to bound what a Redis that lost its
# last second of writes (an append-only file synced every second) can show stale.
TTL_S = 600
_WARN_EVERY_S = 60.0

# The hash tag of every key a script of the cache touches.
_TAG = "readcache"
# Attempts at a read or write whose epoch another process moved on meanwhile.
_EPOCH_TRIES = 3

# KEYS: the epoch, then for each view its key followed by the list versions to move on with it.
# ARGV: the epoch the keys are named under, ttl, then (revision, stored form, number of list
# versions) for each view. Returns the current epoch, and writes nothing unless it is ARGV[1].
# Stores each view unless the entry holds a newer revision (see ViewEntry for the stored form),
# and then moves on each of its list versions that exists.
_PUT_VIEWS = """
local epoch = redis.call('GET', KEYS[1]) or '0'
if epoch ~= ARGV[1] then return epoch end
local ttl, k = tonumber(ARGV[2]), 2
for i = 3, #ARGV, 3 do
  local key, versions = KEYS[k], tonumber(ARGV[i + 2])
  local current = redis.call('GET', key)
  if not current or tonumber(string.match(current, '^[^\\n]*\\n(%d+)\\n')) < tonumber(ARGV[i]) then
    redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
    for j = k + 1, k + versions do
      if redis.call('EXISTS', KEYS[j]) == 1 then
        redis.call('INCR', KEYS[j])
      end
    end
  end
  k = k + 1 + versions
end
return epoch
"""

# KEYS: the epoch, the customer's list version, their list. ARGV: the epoch the keys are named
# under, a random starting version, the version's ttl. Returns the current epoch and, when it
# is ARGV[1], the list's version (a version missing is created at the random value, so a
# version never comes back after its key expired) and what the list key holds, if anything.
_GET_LIST = """
local epoch = redis.call('GET', KEYS[1]) or '0'
if epoch ~= ARGV[1] then return {epoch} end
redis.call('SET', KEYS[2], ARGV[2], 'NX')
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
return {epoch, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}
"""

_last_warning = 0.0
# The epoch each epoch key held when this process last asked: usually still the current one.
_seen_epochs: dict[str, str] = {}

T = TypeVar("T")


class EpochMoving(RedisError):
    """The epoch moved on at every attempt: another process keeps orphaning the cache."""


def _tagged(name: str) -> str:
    return namespace.tagged(_TAG, name)


def _epoch() -> str:
    return _tagged("epoch")


def _view_key(epoch: str, generation: str, room_id: int) -> str:
    return _tagged(f"view:{epoch}:{generation}:{room_id}")


def _version_key(epoch: str, generation: str, customer_id: int) -> str:
    return _tagged(f"listver:{epoch}:{generation}:{customer_id}")


def _list_key(epoch: str, generation: str, customer_id: int) -> str:
    return _tagged(f"list:{epoch}:{generation}:{customer_id}")


def _at_current_epoch(attempt: Callable[[str], tuple[str, T]]) -> T:
    """Run `attempt` under the epoch seen last; again while it answers that another is current.

    An attempt names its keys under the epoch it is given and returns the current epoch with
    its result, which counts only when the two are the same.
    """
    name = _epoch()
    for _ in range(_EPOCH_TRIES):
        seen = _seen_epochs.get(name, "0")
        current, result = attempt(seen)
        if current == seen:
            return result
        _seen_epochs[name] = current
    raise EpochMoving(f"the epoch moved on {_EPOCH_TRIES} times in a row")


def _unavailable(what: str, exc: Exception) -> None:
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
    return namespace.key(f"readcache:page:{generation}:{room_id}:{first}:{last}:{len(page)}:{revisions}")


def page(generation: str, room_id: int, page: list[tuple[int, int]]) -> list[str] | None:
    """The rendered messages of this page ((id, revision) of each), if cached."""
    try:
        found = backends.redis_client().get(_page_key(generation, room_id, page))
    except backends.REDIS_ERRORS as exc:
        _unavailable("message page", exc)
        return None
    return None if found is None else str(found).split("\n")


def put_page(generation: str, room_id: int, page: list[tuple[int, int]], rendered: list[str]) -> None:
    # Rendered JSON never holds a raw newline, so one joins the messages.
    try:
        backends.redis_client().set(_page_key(generation, room_id, page), "\n".join(rendered), ex=TTL_S)
    except backends.REDIS_ERRORS as exc:
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
        self.participants = tuple(participants)


def json_of(stored: str) -> str:
    return stored[stored.index("\n", stored.index("\n") + 1) + 1 :]


def views(generation: str, room_ids: list[int]) -> dict[int, str]:
    """The stored forms of the cached views among these rooms."""
    if not room_ids:
        return {}

    def read(epoch: str) -> tuple[str, list[Any]]:
        keys = [_view_key(epoch, generation, r) for r in room_ids]
        current, *found = backends.redis_client().mget([_epoch(), *keys])
        return str(current or "0"), found

    try:
        found = _at_current_epoch(read)
    except backends.REDIS_ERRORS as exc:
        _unavailable("room views", exc)
        return {}
    return {r: str(s) for r, s in zip(room_ids, found, strict=True) if s is not None}


def put_views(generation: str, entries: Iterable[tuple[int, ViewEntry]], *, changed: bool = True) -> bool:
    """Store views unless newer revisions are there; False when Redis failed the write.

    `changed` says the views changed (the projector wrote them), which makes the room lists
    showing them stale; a reader filling what it missed passes False.
    """
    listed = list(entries)
    if not listed:
        return True

    def write(epoch: str) -> tuple[str, None]:
        keys, args = [_epoch()], [epoch, TTL_S]
        for room_id, entry in listed:
            versions = [_version_key(epoch, generation, c) for c in entry.participants] if changed else []
            keys += [_view_key(epoch, generation, room_id), *versions]
            args += [entry.rev, entry.stored, len(versions)]
        return str(backends.run_script(_PUT_VIEWS, keys, args)), None

    try:
        _at_current_epoch(write)
    except backends.REDIS_ERRORS as exc:
        _unavailable("room views", exc)
        return False
    return True


# --- Room lists --------------------------------------------------------------------------


class RoomList:
    """A customer's cached room list: where to store it, at which version, and what was there."""

    __slots__ = ("body", "key", "rooms", "version")

    def __init__(self, key: str | None, version: str | None, rooms: str | None, body: str | None) -> None:
        self.key, self.version, self.rooms, self.body = key, version, rooms, body


def room_list(generation: str, customer_id: int) -> RoomList:
    """The list cached for this customer at their list's current version, if any.

    Any view of theirs the projector writes moves the version on, so a list found here shows
    every view as the read store has it; which rooms it holds the caller checks itself.
    """

    def read(epoch: str) -> tuple[str, RoomList]:
        key = _list_key(epoch, generation, customer_id)
        keys = [_epoch(), _version_key(epoch, generation, customer_id), key]
        current, *answer = backends.run_script(_GET_LIST, keys, [epoch, secrets.randbits(48), TTL_S + 60])
        if not answer:
            return str(current), RoomList(None, None, None, None)
        version, found = str(answer[0]), answer[1]
        # The list holds the version it was assembled at: one assembled before a move is stale.
        if found is None or not str(found).startswith(f"{version}\n"):
            return str(current), RoomList(key, version, None, None)
        _, rooms, body = str(found).split("\n", 2)
        return str(current), RoomList(key, version, rooms, body)

    try:
        return _at_current_epoch(read)
    except backends.REDIS_ERRORS as exc:
        _unavailable("room lists", exc)
        return RoomList(None, None, None, None)


def put_room_list(listing: RoomList, rooms: str, body: str) -> None:
    if listing.key is None:
        return
    try:
        backends.redis_client().set(listing.key, f"{listing.version}\n{rooms}\n{body}", ex=TTL_S)
    except backends.REDIS_ERRORS as exc:
        _unavailable("room lists", exc)


def forget_views() -> bool:
    """Orphan every cached view; False when Redis could not be told."""
    try:
        _seen_epochs[_epoch()] = str(backends.redis_client().incr(_epoch()))
    except backends.REDIS_ERRORS as exc:
        _unavailable("room views", exc)
        return False
    return True

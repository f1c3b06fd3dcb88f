"""Search over the caller's rooms: PostgreSQL's full-text search on a read-side table that the
projector fills (decision record 0010), away from the command side's tables.

A message is indexed in the state of its highest revision: an edited message is found by its
new text only, a deleted one never. Documents and queries are folded the same way (`fold`), so
"tieng viet" finds "Tiếng Việt"; English words match by their stems (`to_tsvector('english')`)
and every word also as it is (`'simple'`, which is what Vietnamese needs); the last word of a
query matches as a prefix, so results come while someone is still typing it.

The embedded default (SQLite) has no text search: there every word must appear in the folded
text, anywhere (no stems).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction

from accounts.tokens import Principal
from chat_command import selectors as truth
from chat_command.events import MessageSent, MessageUpdated
from chat_command.models import Room
from chat_command.services import not_a_participant
from chat_query.models import SearchEntry
from chat_query.projection import message_document
from chat_query.selectors import message_json
from infrastructure.http.errors import BadRequest
from infrastructure.http.responses import render
from infrastructure.messaging.events import Event

PAGE_SIZE = 20
QUERY_MIN = 2
QUERY_MAX = 200
TERMS_MAX = 8
# How many of the caller's newest messages a search reads through before it asks the text index.
RECENT = 200
_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Text as search compares it: lower case, without accents or tone marks (đ is d)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# --- Indexing (the projector) ------------------------------------------------------------

# A row moves only to a higher revision, so events may come in any order, any number of times.
_UPSERT = """
INSERT INTO search_messages (message_id, room_id, revision, folded, message) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (message_id) DO UPDATE SET
    room_id = excluded.room_id, revision = excluded.revision, folded = excluded.folded, message = excluded.message
WHERE search_messages.revision < excluded.revision
"""


def index(events: Iterable[Event]) -> None:
    """Write the newest state of each message these events carry."""
    newest: dict[int, MessageSent | MessageUpdated] = {}
    for event in events:
        if isinstance(event, MessageSent | MessageUpdated):
            known = newest.get(event.messageId)
            if known is None or event.revision > known.revision:
                newest[event.messageId] = event
    # A rebuild replays every message into a table that mostly holds them already: one look-up
    # skips those, where building and upserting each cost 58 s per 1,000,000 on the benchmark.
    for message_id, revision in _held(list(newest)):
        if revision >= newest[message_id].revision:
            del newest[message_id]
    if not newest:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(_UPSERT, [_row(event) for event in newest.values()])


def _held(message_ids: list[int]) -> list[tuple[int, int]]:
    """(message_id, revision) of each of these messages the table holds."""
    if connection.vendor != "postgresql" or not message_ids:
        return list(SearchEntry.objects.filter(message_id__in=message_ids).values_list("message_id", "revision"))
    # One array parameter: the ORM's IN list of 5,000 took 7 times as long to send and plan.
    with connection.cursor() as cursor:
        cursor.execute("SELECT message_id, revision FROM search_messages WHERE message_id = ANY(%s)", [message_ids])
        return cursor.fetchall()


def _row(event: MessageSent | MessageUpdated) -> tuple[Any, ...]:
    message = message_json(message_document(event))
    folded = "" if message["deleted"] else fold(message["content"])
    return (event.messageId, event.roomId, event.revision, folded, json.dumps(message, ensure_ascii=False))


# --- Searching ---------------------------------------------------------------------------


def check_query(text: str | None) -> list[str]:
    """The words to look for (none when q holds no letter or digit), or a 400."""
    text = text or ""
    if len(text) < QUERY_MIN:
        raise BadRequest(f"q must be at least {QUERY_MIN} characters.", code="invalid")
    if len(text) > QUERY_MAX:
        raise BadRequest(f"q must be at most {QUERY_MAX} characters.", code="invalid")
    return _WORD.findall(fold(text))[:TERMS_MAX]


def search(me: Principal, words: list[str], room_id: int | None = None, before: int | None = None) -> list[str]:
    """The caller's messages that hold every word (the last one as a prefix), newest first, each
    rendered with its room's name; `before` is an exclusive messageId cursor."""
    rooms = truth.readable_room_ids(me)
    if room_id is not None:
        if room_id not in rooms:
            raise not_a_participant(me.customer_id, room_id)
        rooms = [room_id]
    if not rooms or not words:
        return []
    cursor_id = truth.BIGINT_MAX if before is None else min(before, truth.BIGINT_MAX)
    found = (
        _postgresql(words, rooms, cursor_id)
        if connection.vendor == "postgresql"
        else _anywhere(words, rooms, cursor_id)
    )
    names = dict(Room.objects.filter(room_id__in={m["roomId"] for m in found}).values_list("room_id", "room_name"))
    return [render({**m, "roomName": names.get(m["roomId"], "")}) for m in found]


def _postgresql(words: list[str], rooms: list[int], before: int) -> list[dict[str, Any]]:
    # Each word matches by its English stem or as it is; the last one as a prefix too.
    terms = [f"'{w}'" for w in words[:-1]] + [f"'{words[-1]}':*"]
    query = " && ".join("(to_tsquery('english', %s) || to_tsquery('simple', %s))" for _ in terms)
    matches = [t for term in terms for t in (term, term)]
    # A word common enough to fill a page among the caller's newest messages is found fastest
    # by reading those newest first and stopping at a page; the text index would hand over
    # every match in the table to be sorted (about 100 ms for a word in 1 message of 7, out of
    # 1,000,000). Only a rarer word goes on to the index, which then has few matches to sort.
    recent = (
        "SELECT message FROM (SELECT message_id, message, document FROM search_messages"
        " WHERE room_id = ANY(%s) AND message_id < %s ORDER BY message_id DESC LIMIT %s) recent"
        f" WHERE document @@ ({query}) ORDER BY message_id DESC LIMIT %s"
    )
    found = _fetch(recent, [rooms, before, RECENT, *matches, PAGE_SIZE])
    if len(found) == PAGE_SIZE:
        return found
    # MATERIALIZED: asked for the newest matches, the planner would otherwise walk the caller's
    # messages newest first here too, all of them for a word they do not hold (300 ms and more).
    indexed = (
        "WITH found AS MATERIALIZED (SELECT message_id, message FROM search_messages"
        f" WHERE room_id = ANY(%s) AND message_id < %s AND document @@ ({query}))"
        " SELECT message FROM found ORDER BY message_id DESC LIMIT %s"
    )
    return _fetch(indexed, [rooms, before, *matches, PAGE_SIZE])


def _fetch(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [_loaded(row[0]) for row in cursor.fetchall()]


def _anywhere(words: list[str], rooms: list[int], before: int) -> list[dict[str, Any]]:
    query = ("SELECT message FROM search_messages WHERE room_id IN ({}) AND message_id < %s").format(
        ", ".join(["%s"] * len(rooms))
    )
    query += "".join(" AND folded LIKE %s ESCAPE '\\'" for _ in words) + " ORDER BY message_id DESC LIMIT %s"
    patterns = ["%" + w.replace("\\", "\\\\").replace("_", "\\_") + "%" for w in words]
    with connection.cursor() as cursor:
        cursor.execute(query, [*rooms, before, *patterns, PAGE_SIZE])
        return [_loaded(row[0]) for row in cursor.fetchall()]


def _loaded(value: Any) -> dict[str, Any]:
    """A stored message: jsonb arrives decoded, SQLite's text does not."""
    return value if isinstance(value, dict) else json.loads(value)

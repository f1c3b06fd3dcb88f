"""Indexes FerretDB 1.x can use, added to the PostgreSQL tables it keeps collections in.

FerretDB turns an equality filter such as `{"roomId": 5}` into the containment test
`_jsonb->'roomId' @> '5'` on the collection's table, but the indexes it creates itself are
btree expression indexes, which cannot serve `@>`: every query and every update of the read
store then scans its whole collection. A GIN index on the same expression serves it. The read
store adds one per field it filters on by equality, when FERRETDB_POSTGRES_URL names
FerretDB's PostgreSQL database; on MongoDB the indexes of `ReadStore.ensure_indexes` suffice.

The table behind a collection is read from FerretDB's own metadata table. Dropping the
collection drops the table and these indexes with it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping

import psycopg
from django.conf import settings
from psycopg import sql

log = logging.getLogger(__name__)

_METADATA_TABLE = "_ferretdb_database_metadata"


def add_containment_indexes(database: str, fields_by_collection: Mapping[str, Iterable[str]]) -> int:
    """Create the missing GIN indexes; return how many were created (0 when not on FerretDB)."""
    url = settings.FERRETDB_POSTGRES_URL
    if not url:
        return 0
    created = 0
    with psycopg.connect(url, autocommit=True) as conn:
        for collection, fields in fields_by_collection.items():
            table = _table_of(conn, database, collection)
            if table is None:
                raise LookupError(f"FerretDB has no table for collection {database}.{collection}")
            for field in fields:
                created += _ensure_gin(conn, database, table, field)
    return created


def _table_of(conn: psycopg.Connection, database: str, collection: str) -> str | None:
    query = sql.SQL("SELECT _jsonb->>'table' FROM {} WHERE _jsonb->>'_id' = %s").format(
        sql.Identifier(database, _METADATA_TABLE)
    )
    row = conn.execute(query, [collection]).fetchone()
    return None if row is None else str(row[0])


def index_name(database: str, table: str, field: str) -> str:
    """A name unique within the schema and short enough for PostgreSQL's 63 characters."""
    digest = hashlib.sha256(f"{database}.{table}.{field}".encode()).hexdigest()[:16]
    return f"chat_gin_{digest}"


def _ensure_gin(conn: psycopg.Connection, database: str, table: str, field: str) -> int:
    name = index_name(database, table, field)
    exists = conn.execute(
        "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = %s", [database, name]
    ).fetchone()
    if exists:
        return 0
    statement = sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin ((_jsonb -> {}) jsonb_path_ops)").format(
        sql.Identifier(name), sql.Identifier(database, table), sql.Literal(field)
    )
    try:
        conn.execute(statement)
    except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
        return 0  # another process created it at the same moment
    log.info("added GIN index %s on %s.%s (%s)", name, database, table, field)
    return 1

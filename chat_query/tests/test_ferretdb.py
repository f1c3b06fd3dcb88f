"""The GIN indexes the read store adds to FerretDB's tables, checked in its PostgreSQL."""

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from chat_query import ferretdb
from chat_query.store import ReadStore
from infrastructure import backends

# The test command's read store is FerretDB, so these run there; without it they fail.
pytestmark = pytest.mark.usefixtures("ferretdb_postgres_url")

FIELDS = {"chatRoomViews": ("_id", "participantIds"), "messages": ("_id", "roomId"), "readMarkers": ("_id", "roomId")}


def _connect() -> psycopg.Connection:
    return psycopg.connect(settings.FERRETDB_POSTGRES_URL or "")


def _indexes(database: str) -> dict[str, str]:
    with _connect() as conn:
        rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", [database]).fetchall()
    return dict(rows)


def _table(database: str, collection: str) -> str:
    with _connect() as conn:
        return ferretdb._table_of(conn, database, collection) or ""


def test_every_equality_filtered_field_has_a_gin_index(read_store_generation_of_its_own):
    db = backends.mongo_db()
    indexes = _indexes(db.name)
    for base, fields in FIELDS.items():
        collection = f"{base}_{read_store_generation_of_its_own}"
        table = _table(db.name, collection)
        for field in fields:
            definition = indexes[ferretdb.index_name(db.name, table, field)]
            assert "USING gin" in definition
            assert f"'{field}'" in definition
            assert table in definition


def test_a_query_by_room_is_answered_through_the_index(read_store_generation_of_its_own):
    db = backends.mongo_db()
    store = ReadStore(db, read_store_generation_of_its_own)
    store.messages.insert_many([{"_id": i, "roomId": i % 50, "content": "x"} for i in range(1, 2001)])
    assert sorted(m["_id"] for m in store.messages.find({"roomId": 7})) == list(range(7, 2001, 50))
    table = _table(db.name, store.messages.name)
    with _connect() as conn:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(db.name, table)))
        query = sql.SQL("EXPLAIN SELECT _jsonb FROM {} WHERE _jsonb->'roomId' @> '7'")
        plan = conn.execute(query.format(sql.Identifier(db.name, table))).fetchall()
    assert ferretdb.index_name(db.name, table, "roomId") in " ".join(line for (line,) in plan)


def test_ensuring_the_indexes_again_creates_none(read_store_generation_of_its_own):
    db = backends.mongo_db()
    collections = {f"{base}_{read_store_generation_of_its_own}": fields for base, fields in FIELDS.items()}
    assert ferretdb.add_containment_indexes(db.name, collections) == 0


def test_a_collection_ferretdb_does_not_have_is_an_error():
    with pytest.raises(LookupError, match="no_such_collection"):
        ferretdb.add_containment_indexes(backends.mongo_db().name, {"no_such_collection": ("_id",)})

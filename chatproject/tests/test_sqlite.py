"""The SQLite file of the embedded mode, written by several threads at once."""

import threading

import pytest
from django.db import connections, transaction
from django.db.utils import ConnectionHandler

from infrastructure.env import database_from_url

ALIAS = "sqlite_file"


@pytest.fixture
def sqlite_file(tmp_path, django_db_blocker):
    """A database alias on a SQLite file, configured the way DATABASE_URL=sqlite:///... is."""
    config = database_from_url(f"sqlite:///{tmp_path / 'chat.sqlite3'}", tmp_path / "unused.sqlite3")
    connections.settings[ALIAS] = ConnectionHandler({"default": config}).settings["default"]
    try:
        with django_db_blocker.unblock():
            with connections[ALIAS].cursor() as cursor:
                cursor.execute("CREATE TABLE notes (text TEXT)")
            yield ALIAS
            connections[ALIAS].close()
            del connections[ALIAS]  # this thread's wrapper, which names this test's file
    finally:
        del connections.settings[ALIAS]


def _read_then_write(alias: str, text: str) -> int:
    """Count the notes, then add one, in one transaction (the shape of a send); return the count."""
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM notes")
        (count,) = cursor.fetchone()
        cursor.execute("INSERT INTO notes VALUES (%s)", [text])
    return int(count)


def test_a_transaction_that_reads_then_writes_waits_for_the_writer_before_it(sqlite_file):
    holding, release = threading.Event(), threading.Event()

    def first_writer():
        try:
            with transaction.atomic(using=sqlite_file), connections[sqlite_file].cursor() as cursor:
                cursor.execute("INSERT INTO notes VALUES ('first')")
                holding.set()
                release.wait(10)
        finally:
            connections[sqlite_file].close()

    thread = threading.Thread(target=first_writer)
    thread.start()
    assert holding.wait(10)
    # Nothing tells when the second transaction waits inside SQLite: commit the first a moment later.
    threading.Timer(0.2, release.set).start()
    try:
        seen = _read_then_write(sqlite_file, "second")
    finally:
        release.set()
        thread.join(10)
    assert seen == 1, "the second transaction began after the first committed"


def test_the_sqlite_file_keeps_a_write_ahead_log(sqlite_file):
    with connections[sqlite_file].cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone() == ("wal",)

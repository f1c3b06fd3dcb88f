import time

import pytest
from django.db import connection, connections

from infrastructure.testing.descriptors import descriptors_taken_below

pytestmark = pytest.mark.integration


@pytest.fixture
def spare_connection(db):
    if connection.vendor != "postgresql":
        pytest.fail("DATABASE_URL must name the real PostgreSQL (`make test`).")
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def test_an_idle_open_connection_is_usable_without_a_round_trip(spare_connection):
    with spare_connection.cursor() as cursor:
        cursor.execute("SELECT 'the last query'")
    assert spare_connection.is_usable()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", [spare_connection.connection.info.backend_pid]
        )
        assert cursor.fetchone() == ("SELECT 'the last query'",), "the check sent a query of its own"


def test_a_connection_the_server_closed_is_replaced_at_the_next_health_check(spare_connection):
    pid = spare_connection.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while spare_connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not spare_connection.is_usable()

    spare_connection.health_check_enabled, spare_connection.health_check_done = True, False
    spare_connection.close_if_health_check_failed()
    assert spare_connection.connection is None
    with spare_connection.cursor() as cursor:  # reconnects
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_inside_a_transaction_the_check_asks_the_server(spare_connection):
    with spare_connection.cursor() as cursor:
        cursor.execute("BEGIN")
        assert spare_connection.is_usable()
        cursor.execute("ROLLBACK")


def test_a_connection_whose_descriptor_is_past_1024_is_checked_too(spare_connection):
    # A web process with thousands of open WebSockets opens its database connections up there,
    # past the 1,024 descriptors select() can watch.
    spare_connection.close()
    with descriptors_taken_below(1100):
        spare_connection.ensure_connection()
    assert spare_connection.connection.fileno() >= 1100
    assert spare_connection.is_usable()


def test_a_database_url_listing_several_hosts_connects_to_the_first_that_accepts_writes(db):
    from pathlib import Path

    from django.db.utils import ConnectionHandler

    from infrastructure.env import database_from_url
    from infrastructure.testing.private_services import failover_url

    handler = ConnectionHandler({"default": database_from_url(failover_url(), Path("/unused"))})
    wrapper = handler["default"]
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT current_database(), pg_is_in_recovery()")
            assert cursor.fetchone() == (connection.settings_dict["NAME"], False)
    finally:
        wrapper.close()

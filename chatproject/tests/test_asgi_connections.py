"""The web role (ASGI, uvicorn) keeps no PostgreSQL connection per request it served."""

import os
import time
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from benchmarks.common import free_port, uvicorn_command

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
REQUESTS = 40


def connections_to(database: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database])
        return int(cursor.fetchone()[0])


def wait_until_answering(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            assert time.monotonic() < deadline, f"the web role never answered {url}"
            time.sleep(0.2)


def test_requests_over_asgi_leave_no_database_connection_behind(transactional_db, children):
    database = settings.DATABASES["default"]["NAME"]
    parts = urlsplit(os.environ["DATABASE_URL"])
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": urlunsplit(parts._replace(path=f"/{database}"))}
    environment.pop("DATABASE_CONN_MAX_AGE", None)
    children.start("web", uvicorn_command(port), environment)
    wait_until_answering(f"http://127.0.0.1:{port}/healthz")
    before = connections_to(database)
    for _ in range(REQUESTS):  # /readyz asks PostgreSQL, as every API request does
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=15) as answer:
            assert answer.status == 200
    assert connections_to(database) - before <= 2, "each request left its connection open"

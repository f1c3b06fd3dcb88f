"""The test run's isolation from any system on the same services, loaded by pytest with `-p`.

Imported before Django reads its settings, so the namespace below reaches the settings and every
process a test starts. A run gets a namespace of its own (Kafka topics and consumer groups, Redis
keys, channel-layer names) and drops it at the end: a `make prod` on the same services never sees
the tests' events, and the tests never see its. Databases are the tests' own already (pytest-django
creates `test_<name>`; the read store's database is made per run in conftest.py).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

NAMESPACE = f"test-{uuid.uuid4().hex[:8]}"
DROP_PATIENCE_S = 30.0
os.environ["CHAT_NAMESPACE"] = NAMESPACE

_SERVICES = {
    "DATABASE_URL": "PostgreSQL",
    "REDIS_URL": "Redis",
    "KAFKA_BOOTSTRAP_SERVERS": "Kafka",
    "MONGO_URL": "the MongoDB-wire server",
    "FERRETDB_POSTGRES_URL": "FerretDB's PostgreSQL",
}
# What makes a test an integration test: it says so, or it asks for a database or a service.
_INTEGRATION_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_setup",
    "live_server",
    "redis_url",
    "kafka_bootstrap",
    "mongo_url",
    "ferretdb_postgres_url",
}


def missing_services() -> list[str]:
    """Name the real services this run is not configured for (empty when all are)."""
    from django.conf import settings

    missing = [f"{name} ({what})" for name, what in _SERVICES.items() if not getattr(settings, name, None)]
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        missing.insert(0, "DATABASE_URL (PostgreSQL, not SQLite)")
    return missing


def _is_integration(item: pytest.Item) -> bool:
    if item.get_closest_marker("integration") or item.get_closest_marker("django_db"):
        return True
    return bool(_INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail an integration test at once when the run has no real services, instead of letting it
    pass on the embedded stand-ins."""
    if not _is_integration(item):
        return
    missing = missing_services()
    if missing:
        pytest.fail(
            "integration tests run against the real services; not configured: "
            + ", ".join(missing)
            + '. Run `make test`, or `scripts/services up && eval "$(scripts/services env)"` before pytest.',
            pytrace=False,
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop what the run left under its namespace: topics, consumer groups, Redis keys."""
    if missing_services():
        return
    from infrastructure import namespace

    # A consumer a failed test killed stays in its group until its session times out (10 s),
    # and a group with members cannot be deleted.
    deadline = time.monotonic() + DROP_PATIENCE_S
    while True:
        try:
            namespace.drop(NAMESPACE)
            return
        except namespace.DropIncomplete as incomplete:
            if time.monotonic() > deadline:
                _warn(session, f"the test run's namespace was not dropped whole: {incomplete}")
                return
            time.sleep(1)
        except Exception as error:  # noqa: BLE001 - a service that went away; the summary must still show
            _warn(session, f"the test run's namespace {NAMESPACE} was not dropped: {error}")
            return


def _warn(session: pytest.Session, message: str) -> None:
    """Say it at the end of the run; raising here would hide the run's own summary."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"WARNING: {message}")

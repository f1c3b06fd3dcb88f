"""The consumer roles' healthcheck reads the status each role stores in Redis."""

from __future__ import annotations

import json
import time

import pytest

from deploy import healthcheck
from infrastructure import backends, namespace

pytestmark = pytest.mark.integration


@pytest.fixture
def group_prefix(settings, redis_url, unique, monkeypatch):
    settings.KAFKA_GROUP_PREFIX = f"{settings.KAFKA_GROUP_PREFIX}-hc-{unique}"
    monkeypatch.setenv("CHAT_INSTANCE_NAME", "projector-2")
    yield settings.KAFKA_GROUP_PREFIX
    for member in ("projector-2", "projector-1"):
        backends.redis_client().delete(status_key(settings.KAFKA_GROUP_PREFIX, member))


def status_key(prefix: str, member: str) -> str:
    return namespace.key(f"consumer_status:{prefix}-projector@{member}")


def store_status(prefix: str, seconds_ago: float, member: str = "projector-2") -> None:
    status = {"role": f"{prefix}-projector", "assigned": True, "updated": time.time() - seconds_ago}
    backends.redis_client().set(status_key(prefix, member), json.dumps(status))


def test_a_role_that_reported_recently_is_healthy(group_prefix):
    store_status(group_prefix, seconds_ago=5)
    assert healthcheck.check_consumer("projector") is None


def test_a_role_whose_loop_stopped_reporting_is_unhealthy(group_prefix):
    store_status(group_prefix, seconds_ago=95)
    assert healthcheck.check_consumer("projector") == (
        f"{group_prefix}-projector member projector-2 last reported 95 s ago"
    )


def test_a_member_that_stopped_reporting_is_unhealthy_while_another_member_of_its_group_reports(group_prefix):
    store_status(group_prefix, seconds_ago=95, member="projector-2")
    store_status(group_prefix, seconds_ago=1, member="projector-1")
    assert "member projector-2 last reported 95 s ago" in healthcheck.check_consumer("projector")


def test_a_status_saved_by_a_member_is_its_own_and_its_groups_latest(group_prefix):
    from infrastructure.messaging import consumers

    consumers.Status(f"{group_prefix}-projector", processed=7).save()
    assert consumers.read_status(f"{group_prefix}-projector", "projector-2")["processed"] == 7
    assert consumers.read_status(f"{group_prefix}-projector")["processed"] == 7


def test_an_unknown_role_is_a_usage_error():
    assert healthcheck.main(["indexer"]) == 2

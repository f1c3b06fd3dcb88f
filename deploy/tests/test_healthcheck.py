"""The consumer roles' healthcheck reads the status each role stores in Redis."""

from __future__ import annotations

import json
import time

import pytest

from deploy import healthcheck
from infrastructure import backends, namespace

pytestmark = pytest.mark.integration


@pytest.fixture
def group_prefix(settings, redis_url, unique):
    settings.KAFKA_GROUP_PREFIX = f"{settings.KAFKA_GROUP_PREFIX}-hc-{unique}"
    yield settings.KAFKA_GROUP_PREFIX
    backends.redis_client().delete(namespace.key(f"consumer_status:{settings.KAFKA_GROUP_PREFIX}-projector"))


def store_status(prefix: str, seconds_ago: float) -> None:
    status = {"role": f"{prefix}-projector", "assigned": True, "updated": time.time() - seconds_ago}
    backends.redis_client().set(namespace.key(f"consumer_status:{prefix}-projector"), json.dumps(status))


def test_a_role_that_reported_recently_is_healthy(group_prefix):
    store_status(group_prefix, seconds_ago=5)
    assert healthcheck.check_consumer("projector") is None


def test_a_role_whose_loop_stopped_reporting_is_unhealthy(group_prefix):
    store_status(group_prefix, seconds_ago=95)
    assert healthcheck.check_consumer("projector") == f"{group_prefix}-projector last reported 95 s ago"


def test_an_unknown_role_is_a_usage_error():
    assert healthcheck.main(["indexer"]) == 2

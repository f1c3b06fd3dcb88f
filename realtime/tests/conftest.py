"""The channel layer of the realtime tests on a Redis of the test's own (infrastructure/testing/private_services.py)."""

from __future__ import annotations

import pytest

from infrastructure.testing.private_services import PrivateRedis, PrivateRedisCluster


@pytest.fixture
def private_layer(settings, private_redis) -> PrivateRedis:
    """This process's channel layer (the hub, push_from_sync) on the test's own Redis."""
    default = settings.CHANNEL_LAYERS["default"]
    # Channels drops the layers it built when CHANNEL_LAYERS changes, and again when it is restored.
    # One server, even when the run's own Redis is a cluster.
    config = {**default.get("CONFIG", {}), "url": private_redis.url, "cluster": False}
    settings.CHANNEL_LAYERS = {"default": {**default, "CONFIG": config}}
    return private_redis


@pytest.fixture
def private_cluster_layer(settings, private_redis_cluster) -> PrivateRedisCluster:
    """This process's channel layer on the test's own Redis Cluster (sharded pub/sub)."""
    default = settings.CHANNEL_LAYERS["default"]
    config = {**default.get("CONFIG", {}), "url": private_redis_cluster.url, "cluster": True}
    settings.CHANNEL_LAYERS = {"default": {**default, "CONFIG": config}}
    return private_redis_cluster

"""Adapters to the backing services, each with an embedded default when unconfigured.

The rest of the project asks this module for a Mongo database, a Redis client or the Kafka
configuration and never checks which kind it got: the same handlers run in both modes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

import pymongo
import redis
from django.conf import settings
from pymongo.database import Database

# What a failing Redis raises: on a cluster, a node that cannot be reached while the client maps
# the slots, or a slot nobody serves during a failover, is a RedisClusterException, not a RedisError.
REDIS_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)

# Client-side bounds so an unreachable backend fails a request instead of hanging it.
MONGO_TIMEOUT_MS = 5000
REDIS_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 2.0


@functools.cache
def mongo_client() -> Any:
    """The process-wide MongoDB client: real when MONGO_URL is set, in-process otherwise."""
    if settings.MONGO_URL:
        return pymongo.MongoClient(
            settings.MONGO_URL,
            serverSelectionTimeoutMS=MONGO_TIMEOUT_MS,
            connectTimeoutMS=MONGO_TIMEOUT_MS,
            tz_aware=True,
        )
    import mongomock

    return mongomock.MongoClient(tz_aware=True)


def mongo_db(name: str | None = None) -> Database[Any]:
    database: Database[Any] = mongo_client()[name or settings.MONGO_DB_NAME]
    return database


@functools.cache
def redis_client() -> redis.Redis:
    """The process-wide Redis client (decoded strings): real when REDIS_URL is set.

    With REDIS_CLUSTER, a cluster client: it sends each command to the node that holds its
    keys' slot and follows moves and failovers. Every caller keeps the keys one command or
    script touches in one slot (namespace.tagged).
    """
    if settings.REDIS_URL and settings.REDIS_CLUSTER:
        # Typed as redis.Redis: the commands this project uses behave alike on both.
        cluster: Any = redis.RedisCluster.from_url(
            settings.REDIS_URL,
            decode_responses=True,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
            health_check_interval=30,
        )
        return cluster
    if settings.REDIS_URL:
        return redis.Redis.from_url(
            settings.REDIS_URL,
            decode_responses=True,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
            health_check_interval=30,
        )
    import fakeredis

    # Threads serving the first requests may ask at once; each must reach the one server.
    with _embedded_lock:
        server = _embedded_redis_server()
    return fakeredis.FakeRedis(server=server, decode_responses=True)


def run_script(text: str, keys: list[str], args: list[Any]) -> Any:
    """Run a Lua script on Redis by its digest (EVALSHA), loading it when the server lacks it."""
    return _script(text)(keys, args, client=redis_client())


def run_scripts(text: str, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
    """run_script of each (keys, args), in order, in one pipelined round trip; a server that
    lacks the script gets it loaded and those calls again."""
    digest = _script(text).sha
    client = redis_client()
    results = _evalsha_each(client, digest, calls)
    missing = [n for n, result in enumerate(results) if isinstance(result, redis.exceptions.NoScriptError)]
    if missing:
        client.script_load(text)  # on a cluster, by every primary
        for n, result in zip(missing, _evalsha_each(client, digest, [calls[n] for n in missing]), strict=True):
            results[n] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def _evalsha_each(client: Any, digest: str, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
    # execute_command: a cluster's pipeline has no evalsha() of its own.
    pipe = client.pipeline(transaction=False)
    for keys, args in calls:
        pipe.execute_command("EVALSHA", digest, len(keys), *keys, *args)
    return list(pipe.execute(raise_on_error=False))


@functools.cache
def _script(text: str) -> Any:
    return redis_client().register_script(text)


_embedded_lock = threading.Lock()


@functools.cache
def _embedded_redis_server() -> Any:
    import fakeredis

    return fakeredis.FakeServer()


def kafka_config(**overrides: Any) -> dict[str, Any]:
    """librdkafka configuration for the configured brokers; fails if Kafka is embedded."""
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set: the event bus is embedded.")
    return {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, **overrides}


_admin_lock = threading.Lock()
_admin: Any = None


def kafka_admin() -> Any:
    global _admin
    from confluent_kafka.admin import AdminClient

    with _admin_lock:
        if _admin is None:
            _admin = AdminClient(kafka_config(**{"socket.timeout.ms": 2000}))
        return _admin


def reset_clients() -> None:
    """Drop cached clients, for example after settings change in tests."""
    global _admin
    mongo_client.cache_clear()
    redis_client.cache_clear()
    with _admin_lock:
        _admin = None

"""A deployment's share of the common services: the names of its Kafka topics and Redis keys.

Two deployments (or a test run beside `make prod`) may use one Kafka, one Redis and one
PostgreSQL server. Each names itself by CHAT_NAMESPACE, which heads every topic ("ns.name"),
consumer group ("ns.chat-role", by KAFKA_GROUP_PREFIX's default), Redis key ("ns:name") and
channel-layer channel ("ns:chat:..."), so neither sees the other's events or state. The empty
namespace keeps the plain names. Code names topics and keys by their plain (logical) names and
asks this module at call time, so a test may switch namespaces with the settings fixture.
The outbox keeps logical topic names: the relay maps them when it publishes.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

# Characters that Kafka topic and group names, Redis key patterns and channel names all take
# as they are. No dot or colon (the separators): "a." can then head only namespace a's names.
PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
# The first part of plain Redis keys (the empty namespace's): a namespace of that name would
# have drop() delete the plain deployment's keys with its own.
RESERVED = frozenset({"presence", "typing", "projected", "readcache"})
_SCAN_BATCH = 1000


class DropIncomplete(RuntimeError):
    """Some of a namespace's topics or groups could not be deleted (the rest were)."""


def check(namespace: str) -> str:
    """Return the namespace if it is valid ("" included), else raise ValueError."""
    if namespace and (not PATTERN.fullmatch(namespace) or namespace in RESERVED):
        raise ValueError(
            f"a namespace is 1-40 lowercase letters, digits and hyphens, starting with a letter or digit,"
            f" and none of {', '.join(sorted(RESERVED))}; got {namespace!r}"
        )
    return namespace


def current() -> str:
    return str(settings.CHAT_NAMESPACE)


def topic(name: str) -> str:
    """The Kafka topic of this deployment for a logical topic name."""
    namespace = current()
    return f"{namespace}.{name}" if namespace else name


def key(name: str) -> str:
    """The Redis key of this deployment for a plain key name."""
    namespace = current()
    return f"{namespace}:{name}" if namespace else name


def tagged(tag: str, name: str) -> str:
    """The Redis key of this deployment for `name`, in the cluster slot of `tag`.

    Redis Cluster hashes only the part of a key inside its first braces, so keys with one tag
    share a slot, and one script or command may touch them together. The tag follows the
    namespace ("ns:{tag}:name"), so a namespace's keys still all start with "ns:".
    """
    return key(f"{{{tag}}}:{name}")


def drop(namespace: str) -> dict[str, int]:
    """Delete a namespace's Kafka topics and consumer groups and its Redis keys; return how many."""
    if not check(namespace):
        raise ValueError("refusing to drop the empty namespace: it holds the plain names of a deployment")
    failures: list[str] = []
    dropped = {"topics": 0, "groups": 0, "keys": 0}
    if settings.KAFKA_BOOTSTRAP_SERVERS:
        dropped["groups"] = _drop_groups(f"{namespace}.", failures)
        dropped["topics"] = _drop_topics(f"{namespace}.", failures)
    dropped["keys"] = _drop_keys(f"{namespace}:*")
    if failures:
        raise DropIncomplete(f"namespace {namespace!r}: dropped {dropped}, but not: {'; '.join(failures)}")
    return dropped


def _drop_groups(prefix: str, failures: list[str]) -> int:
    from infrastructure.backends import kafka_admin

    admin = kafka_admin()
    listed = admin.list_consumer_groups(request_timeout=10).result()
    groups = sorted(g.group_id for g in listed.valid if g.group_id.startswith(prefix))
    if not groups:
        return 0
    return _settle(admin.delete_consumer_groups(groups, request_timeout=30), failures)


def _drop_topics(prefix: str, failures: list[str]) -> int:
    from infrastructure.backends import kafka_admin

    admin = kafka_admin()
    topics = sorted(t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix))
    if not topics:
        return 0
    return _settle(admin.delete_topics(topics, operation_timeout=30), failures)


def _settle(futures: dict[str, Any], failures: list[str]) -> int:
    """Wait for each deletion; count the done ones and name the failed ones."""
    done = 0
    for name, future in futures.items():
        try:
            future.result()
            done += 1
        except Exception as exc:  # noqa: BLE001 - one refusal (a group still in use) must not stop the rest
            failures.append(f"{name}: {exc}")
    return done


def _drop_keys(pattern: str) -> int:
    from infrastructure.backends import redis_client

    client = redis_client()
    deleted = 0
    batch: list[str] = []
    # SCAN, not KEYS: a large keyspace is walked a slice at a time, never blocking the server.
    # On a Redis Cluster the client scans every primary and sends UNLINK once per slot.
    for name in client.scan_iter(match=pattern, count=_SCAN_BATCH):
        batch.append(name)
        if len(batch) >= _SCAN_BATCH:
            deleted += int(client.unlink(*batch))
            batch = []
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted

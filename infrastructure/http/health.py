"""Liveness and readiness endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pymongo
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from infrastructure import backends


@dataclass(frozen=True)
class Check:
    name: str
    backend: str
    probe: Callable[[], object]


def _probe_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _probe_mongo() -> None:
    with pymongo.timeout(backends.PROBE_TIMEOUT_S):
        backends.mongo_db().command("ping")


def _probe_redis() -> None:
    backends.redis_client().ping()


def _probe_kafka() -> None:
    backends.kafka_admin().list_topics(timeout=backends.PROBE_TIMEOUT_S)


def configured_checks() -> list[Check]:
    """One check for every backend, naming whether it is real or embedded."""
    return [
        Check("database", connection.vendor, _probe_database),
        Check("mongo", "mongodb" if settings.MONGO_URL else "embedded", _probe_mongo),
        Check("redis", "redis" if settings.REDIS_URL else "embedded", _probe_redis),
        Check("kafka", "kafka" if settings.KAFKA_BOOTSTRAP_SERVERS else "embedded", _probe_kafka),
    ]


def _run(check: Check) -> dict[str, Any]:
    if check.backend == "embedded" and check.name == "kafka":
        return {"ok": True, "backend": "embedded", "latencyMs": 0.0}
    started = time.perf_counter()
    try:
        check.probe()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported as text
        return {"ok": False, "backend": check.backend, "error": f"{type(exc).__name__}: {exc}"[:300]}
    latency = round((time.perf_counter() - started) * 1000, 2)
    return {"ok": True, "backend": check.backend, "latencyMs": latency}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = configured_checks()
    # The database probe stays on this thread: Django connections are per thread.
    results = {"database": _run(checks[0])}
    with ThreadPoolExecutor(max_workers=len(checks) - 1) as pool:
        for check, result in zip(checks[1:], pool.map(_run, checks[1:]), strict=True):
            results[check.name] = result
    ready = all(result["ok"] for result in results.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503)

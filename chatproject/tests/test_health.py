import subprocess
from pathlib import Path

import pytest

from chatproject import backends

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"


def test_healthz_says_the_process_is_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.integration
@pytest.mark.django_db
def test_readyz_lists_every_configured_backend_as_ready(client, kafka_bootstrap, redis_url, mongo_url):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert {name: check["backend"] for name, check in body["checks"].items()} == {
        "database": "postgresql",
        "mongo": "mongodb",
        "redis": "redis",
        "kafka": "kafka",
    }
    assert all(check["ok"] and check["latencyMs"] >= 0 for check in body["checks"].values())


@pytest.mark.integration
@pytest.mark.django_db
def test_readyz_is_503_and_names_the_backend_that_is_down(client, redis_url):
    subprocess.run([str(SERVICES), "down", "redis"], check=True, capture_output=True)
    try:
        backends.redis_client().connection_pool.disconnect()
        response = client.get("/readyz")
        body = response.json()
        assert response.status_code == 503
        assert body["status"] == "unavailable"
        assert body["checks"]["redis"]["ok"] is False
        assert "Error" in body["checks"]["redis"]["error"]
        assert body["checks"]["database"]["ok"] is True
    finally:
        subprocess.run([str(SERVICES), "up", "redis"], check=True, capture_output=True)
    after = client.get("/readyz")
    assert after.status_code == 200, after.json()

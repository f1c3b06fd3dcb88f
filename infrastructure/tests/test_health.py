import pytest


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
def test_readyz_is_503_and_names_the_backend_that_is_down(client, backends_on_private_redis):
    assert client.get("/readyz").status_code == 200, "ready before its Redis stops"
    backends_on_private_redis.stop()
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert "Error" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True
    backends_on_private_redis.start()
    after = client.get("/readyz")
    assert after.status_code == 200, after.json()

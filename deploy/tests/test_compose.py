"""docker-compose.yml as `docker compose` itself reads it (the client validates without an engine)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER_CONFIG = ROOT / ".local" / "docker"
SECRETS = {"POSTGRES_PASSWORD": "pg0secret", "MONGO_PASSWORD": "mongo0secret", "MONGO_EXPRESS_PASSWORD": "ui0secret"}
DATASTORES = ("postgres", "mongo", "redis", "kafka")
ROLES = ("api", "web", "relay", "projector", "pusher")


def compose(*args: str, secrets: dict[str, str] = SECRETS) -> subprocess.CompletedProcess[str]:
    if not (DOCKER_CONFIG / "cli-plugins" / "docker-compose").exists():
        pytest.fail("docker compose is missing: run scripts/docker-compose-plugin (make test does)")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith(("CHAT_", "COMPOSE_"))}
    env.update(secrets, DOCKER_CONFIG=str(DOCKER_CONFIG))
    command = ["docker", "compose", "--env-file", ".env.example", "-f", "docker-compose.yml", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_compose_file_is_valid():
    result = compose("config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_it_refuses_to_start_until_every_password_is_set():
    result = compose("config", "--quiet", secrets={})
    assert result.returncode != 0
    for name in SECRETS:
        assert f"set {name} in .env" in result.stderr


def test_no_datastore_and_no_role_publishes_a_port(config):
    for name in (*DATASTORES, *ROLES, "init"):
        assert not config["services"][name].get("ports"), f"{name} publishes a port"


def test_only_nginx_is_reachable_from_outside_and_the_uis_listen_on_loopback(config):
    published = {
        name: [(p.get("host_ip"), p["published"], p["target"]) for p in service.get("ports", [])]
        for name, service in config["services"].items()
        if service.get("ports")
    }
    assert published == {
        "nginx": [(None, "8080", 8080)],
        "adminer": [("127.0.0.1", "8088", 8080)],
        "mongo-express": [("127.0.0.1", "8087", 8081)],
    }


def test_every_long_running_service_has_a_healthcheck_and_restarts(config):
    for name, service in config["services"].items():
        if name == "init":
            assert service["restart"] == "no"
            continue
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_data_lives_in_named_volumes(config):
    declared = set(config["volumes"])
    for name in (*DATASTORES, "init"):
        mounts = config["services"][name]["volumes"]
        assert mounts, f"{name} keeps its data nowhere"
        for mount in mounts:
            assert mount["type"] == "volume", (name, mount)
            assert mount["source"] in declared, (name, mount)


def test_the_roles_are_one_image_and_wait_for_the_one_shot_init(config):
    services = config["services"]
    for name in (*ROLES, "init"):
        assert services[name]["build"]["context"] == str(ROOT)
        assert services[name]["image"] == "chatproject:latest"
    for name in ROLES:
        assert services[name]["command"] == [name]
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"
        # The keys and the secret that init wrote are read-only for the roles.
        assert [m["read_only"] for m in services[name]["volumes"] if m["source"] == "chat-state"] == [True]
    assert services["init"]["command"] == ["init"]


def test_nginx_fronts_the_api_and_the_web_replicas_with_the_shared_config(config):
    nginx = config["services"]["nginx"]
    assert {(m["source"], m["target"]) for m in nginx["volumes"]} == {
        (str(ROOT / "deploy" / "nginx.conf"), "/etc/nginx/conf.d/default.conf"),
        (str(ROOT / "deploy" / "nginx" / "upstream.compose.conf"), "/etc/nginx/conf.d/chat-upstream.conf"),
    }
    assert nginx["depends_on"]["api"]["condition"] == "service_healthy"
    assert nginx["depends_on"]["web"]["condition"] == "service_healthy"
    assert config["services"]["web"]["deploy"]["replicas"] == 2
    assert config["services"]["api"]["command"] == ["api"]
    assert config["services"]["web"]["command"] == ["web"]
    upstreams = (ROOT / "deploy" / "nginx" / "upstream.compose.conf").read_text()
    assert "server api:8000 resolve;" in upstreams
    assert "server web:8000 resolve;" in upstreams


def test_both_deployments_route_every_request_of_a_sockjs_session_to_one_web_process():
    """deploy/nginx.conf maps a request to its route; each environment's chat_web hashes by it."""
    route = re.search(r"^map \$uri \$(\w+) \{", (ROOT / "deploy" / "nginx.conf").read_text(), re.MULTILINE)
    assert route, "deploy/nginx.conf maps the URI to a route"
    hashed = f"hash ${route.group(1)} consistent;"
    compose = (ROOT / "deploy" / "nginx" / "upstream.compose.conf").read_text()
    assert hashed in compose.split("upstream chat_web {")[1].split("}")[0]
    local = (ROOT / "scripts" / "prod").read_text()
    assert hashed.replace("$", "\\$") in local.split("upstream chat_web {")[1].split("}")[0]


def test_the_datastore_uis_ask_for_credentials(config):
    express = config["services"]["mongo-express"]["environment"]
    assert express["ME_CONFIG_BASICAUTH_USERNAME"] == "admin"
    assert express["ME_CONFIG_BASICAUTH_PASSWORD"] == SECRETS["MONGO_EXPRESS_PASSWORD"]
    # Adminer has no open access of its own: it logs in to PostgreSQL with the database's password.
    assert config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]


def test_the_roles_trust_forwarded_addresses_only_from_the_stacks_network(config):
    network = config["networks"]["chat"]["ipam"]["config"][0]["subnet"]
    for name in ROLES:
        assert config["services"][name]["environment"]["CHAT_TRUSTED_PROXIES"] == network


def test_the_web_role_accepts_the_configured_host_and_its_own_healthcheck():
    result = compose("config", "--format", "json", secrets={**SECRETS, "CHAT_ALLOWED_HOSTS": "chat.example.org"})
    assert result.returncode == 0, result.stderr
    web = json.loads(result.stdout)["services"]["web"]
    assert web["environment"]["DJANGO_ALLOWED_HOSTS"] == "chat.example.org,127.0.0.1"

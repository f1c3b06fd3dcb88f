"""deploy/entrypoint.sh, the image's entry point, run against the real services."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pymongo
import pytest

from benchmarks.common import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_install(tmp_path, kafka_bootstrap, mongo_url):
    """The environment of a first start: an empty database, an empty state volume."""
    name = f"entry_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(os.environ["DATABASE_URL"])
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}")),
        "MONGO_DB_NAME": name,
        "CHAT_STATE_DIR": str(tmp_path / "state"),
        "CHAT_EMBEDDED_WORKERS": "false",
        "LOG_LEVEL": "WARNING",
    }
    for inherited in ("JWT_PRIVATE_KEY_PATH", "JWT_PUBLIC_KEY_PATH", "DJANGO_SECRET_KEY", "CHAT_SEED_DEMO_USERS"):
        env.pop(inherited, None)
    yield env
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with pymongo.MongoClient(mongo_url) as mongo:
        mongo.drop_database(name)  # the read store `init` made


def entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(ROOT / "deploy" / "entrypoint.sh"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def customers(env: dict[str, str]) -> list[str]:
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        return [row[0] for row in conn.execute("SELECT username FROM customers ORDER BY username")]


def test_init_migrates_and_writes_the_keys_and_the_secret_on_first_start_only(fresh_install):
    state = Path(fresh_install["CHAT_STATE_DIR"])
    first = entrypoint(fresh_install, "init")
    assert first.returncode == 0, first.stderr
    written = {
        name: (state / name).read_bytes() for name in ("keys/private_key.pem", "keys/public_key.pem", "secret_key")
    }

    again = entrypoint(fresh_install, "init")
    assert again.returncode == 0, again.stderr
    assert {name: (state / name).read_bytes() for name in written} == written
    assert customers(fresh_install) == []


def test_init_creates_the_demo_users_only_when_asked(fresh_install):
    result = entrypoint({**fresh_install, "CHAT_SEED_DEMO_USERS": "true"}, "init")
    assert result.returncode == 0, result.stderr
    assert customers(fresh_install) == ["user1", "user2", "user3"]


def test_the_web_role_starts_on_no_deprecated_server_option(fresh_install):
    """A deprecated option in production's command line is a removal waiting to break a deploy."""
    assert entrypoint(fresh_install, "init").returncode == 0
    port = free_port()
    env = {**fresh_install, "CHAT_BIND": "127.0.0.1", "CHAT_WEB_PORT": str(port)}
    command = [str(ROOT / "deploy" / "entrypoint.sh"), "web"]
    web = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, timeout=60)
    finally:
        web.terminate()
        _, log = web.communicate(timeout=30)
    assert "Uvicorn running on" in log
    assert "deprecated" not in log.lower(), log

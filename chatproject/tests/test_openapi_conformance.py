"""The OpenAPI schema tells the truth: schemathesis, with every check, finds nothing to report
against the system `make run` starts."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infrastructure.testing.embedded import ROOT, embedded_server

HERE = Path(__file__).resolve().parent
# Generated requests per operation and phase. 100 takes about a minute on two shared cores; 300
# took two and found nothing more.
MAX_EXAMPLES = 100
RUN_SECONDS = 420

pytestmark = pytest.mark.timeout(RUN_SECONDS + 120)


def _login(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"username": "user1", "password": "123"})
    conn.request("POST", "/auth/login", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    cookie = re.search(r"jwt_token=([^;]+)", response.getheader("Set-Cookie") or "")
    assert response.status == 200, f"login failed: {response.status}"
    assert cookie is not None
    return cookie.group(1)


def test_schemathesis_finds_nothing_the_schema_does_not_say(tmp_path):
    with embedded_server(tmp_path / "state") as server:
        env = {
            **os.environ,
            "CHAT_JWT": _login(server.port),
            "SCHEMATHESIS_HOOKS": "chatproject.tests.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
        }
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--generation-database",
            "none",
            "--no-color",
        ]
        # In tmp_path: schemathesis keeps a cache in its working directory.
        run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_SECONDS)
        server_log = server.log_tail(60)
    assert run.returncode == 0, f"{run.stdout[-30000:]}\n{run.stderr[-5000:]}\n--- server log ---\n{server_log}"

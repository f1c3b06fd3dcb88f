"""The shape of a production-like run (`scripts/prod`): how many processes of each role it has."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from benchmarks.common import free_port

ROOT = Path(__file__).resolve().parents[2]


def prod(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_PROD_")}
    return subprocess.run(
        [str(ROOT / "scripts" / "prod"), *args], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def names_in(status: str) -> list[str]:
    return [line.split()[0] for line in status.splitlines()]


def test_a_run_has_one_process_of_each_role_and_two_web_processes_by_default():
    result = prod("status", CHAT_PROD_PORT=str(free_port()))
    assert result.returncode == 0, result.stderr
    assert names_in(result.stdout) == ["api", "web-1", "web-2", "relay", "projector", "pusher", "nginx"]


def test_the_counts_of_a_clustered_run_name_every_process_it_starts_and_stops():
    counts = {"CHAT_PROD_APIS": "2", "CHAT_PROD_WEBS": "3", "CHAT_PROD_RELAYS": "2"}
    counts |= {"CHAT_PROD_PROJECTORS": "2", "CHAT_PROD_PUSHERS": "2"}
    result = prod("status", CHAT_PROD_PORT=str(free_port()), **counts)
    assert result.returncode == 0, result.stderr
    assert names_in(result.stdout) == [
        *("api", "api-2", "web-1", "web-2", "web-3", "relay", "relay-2"),
        *("projector", "projector-2", "pusher", "pusher-2", "nginx"),
    ]


def test_starting_a_process_the_run_does_not_have_is_refused_by_name():
    result = prod("start", "web-3", CHAT_PROD_PORT=str(free_port()))
    assert result.returncode != 0
    assert "this run has no process named web-3" in result.stderr

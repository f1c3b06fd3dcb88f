"""benchmarks/parts.py, run small: each part measures its CPU and leaves nothing behind."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> dict[str, float]:
    env = {**os.environ, "BENCH_NO_PROGRESS": "1"}
    run = subprocess.run(
        [sys.executable, "benchmarks/parts.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = ROOT / ".local" / "bench" / f"parts_{args[0].replace('-', '_')}.json"
    return {f["name"]: f["value"] for f in json.loads(report.read_text())}


def _databases() -> set[str]:
    server = urlsplit(os.environ["DATABASE_URL"])._replace(path="/postgres")
    with psycopg.connect(urlunsplit(server)) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


@pytest.mark.timeout(320)
def test_the_api_part_sends_through_django_and_counts_its_cpu():
    figures = _run("api", "--sends", "50")
    assert figures["api, in-process: CPU a send"] > 0
    assert figures["api, in-process: wall time a send"] >= figures["api, in-process: CPU a send"] / 2
    assert "chat_bench_parts_api" not in _databases()


@pytest.mark.timeout(320)
def test_the_read_store_part_counts_the_projector_ferretdb_and_its_postgresql():
    figures = _run("read-store", "--messages", "100", "--rooms", "20", "--batch", "5")
    parts = [f"CPU a message, {name}" for name in ("projector (this process)", "ferretdb")]
    parts.append("CPU a message, postgresql: read store (FerretDB's)")
    assert all(figures[name] > 0 for name in parts), figures
    assert figures["CPU a message, the three"] == pytest.approx(sum(figures[name] for name in parts))
    assert figures["messages/s"] > 0
    assert "chat_bench_parts_read_store" not in _databases()

"""The sustained benchmark, run small: nothing lost, and CPU counted for every process."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks.tests.test_pipeline import ROLES, ROOT, SERVICES

pytestmark = pytest.mark.integration
REPORT = ROOT / ".local" / "bench" / "sustained.json"
CPU_TABLE = ROOT / ".local" / "bench" / "sustained_cpu.json"


@pytest.mark.timeout(400)
def test_a_small_run_loses_nothing_and_counts_the_cpu_of_every_process():
    REPORT.unlink(missing_ok=True)
    CPU_TABLE.unlink(missing_ok=True)
    env = {**os.environ, "BENCH_NO_PROGRESS": "1"}
    options = ["--duration", "3", "--rate", "20", "--rooms", "4", "--clients", "8"]
    run = subprocess.run(
        [sys.executable, "benchmarks/sustained.py", *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=380,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = {f["name"].strip(): f["value"] for f in json.loads(REPORT.read_text())}
    # 60 posts due over 3 s; each room has two subscribers.
    assert figures["sustained: posts not sent (the server fell behind)"] == 0
    assert "sustained: posts sent over 10 ms late" in figures
    assert figures["sustained: accepted posts/s (asked 20/s)"] == 20
    assert figures["sustained: lost messages"] == 0
    assert figures["sustained: errors (failed posts + reconnects)"] == 0
    assert figures["sustained: deliveries"] == 120
    assert 0 < figures["sustained: p50 POST -> MESSAGE"] <= figures["sustained: p99 POST -> MESSAGE"]
    assert figures["sustained: CPU per message, the load client"] > 0
    cpu = json.loads(CPU_TABLE.read_text())["20"]
    assert set(cpu) >= {*ROLES, *SERVICES, "load client (apart)"}
    for name in ("web-http", "relay", "projector", "pusher", "kafka", "ferretdb", "postgresql: commands"):
        assert cpu[name] > 0, name
    assert figures["sustained: CPU per message, the system"] == pytest.approx(
        sum(v for name, v in cpu.items() if "(apart)" not in name)
    )

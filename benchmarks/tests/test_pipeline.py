"""The pipeline benchmark, run small: every message delivered, and CPU counted for every process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / ".local" / "bench" / "pipeline.json"
CPU_TABLE = ROOT / ".local" / "bench" / "pipeline_cpu.json"
ROLES = ("web-http", "web-ws-a", "web-ws-b", "relay", "projector", "pusher")
SERVICES = ("ferretdb", "kafka", "redis", "postgresql: commands", "postgresql: read store (FerretDB's)")


@pytest.mark.timeout(400)
def test_a_small_run_delivers_every_message_and_counts_the_cpu_of_every_process():
    REPORT.unlink(missing_ok=True)
    CPU_TABLE.unlink(missing_ok=True)
    env = {**os.environ, "BENCH_NO_PROGRESS": "1"}
    options = ["--rates", "20", "--seconds", "3", "--rooms", "4", "--clients", "8", "--warm-up", "1"]
    command = ["benchmarks/pipeline.py", *options]
    run = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=380)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    reported = json.loads(REPORT.read_text())
    assert "warming up at 20/s for 1 s (not reported)" in run.stdout
    assert len({f["name"] for f in reported}) == len(reported), "the warm-up's figures are not in the report"
    figures = {f["name"].strip(): f for f in reported}
    # 60 posts over 3 s on the schedule; the span runs to the last answer.
    assert figures["20/s: accepted posts/s"]["value"] >= 18
    assert figures["20/s: deliveries missing"]["value"] == 0
    assert figures["20/s: p50 POST -> MESSAGE"]["value"] > 0
    assert {"20/s: largest projector lag", "20/s: largest pusher lag", "20/s: posts sent over 10 ms late"} <= set(
        figures
    )
    cpu = json.loads(CPU_TABLE.read_text())["20"]
    assert set(cpu) >= {*ROLES, *SERVICES, "load client (apart)"}
    # The ones with work for every message; an idle one may spend less than a clock tick.
    for name in ("web-http", "relay", "projector", "pusher", "kafka", "ferretdb", "postgresql: commands"):
        assert cpu[name] > 0, name

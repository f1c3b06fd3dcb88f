"""The shortest cluster drill, as `make drills-cluster` runs all four: a projector and a pusher die.

It runs the clustered topology (three Kafka brokers, a Redis Cluster, two of each consumer role,
three web processes behind nginx) on a private instance of its own, so the services this test
run uses come through untouched.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.tests.test_drills import services_status

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / ".local" / "bench" / "drills-cluster-short.json"


@pytest.mark.timeout(900)
def test_a_projector_and_a_pusher_killed_mid_stream_lose_and_repeat_nothing_on_the_clustered_topology():
    REPORT.unlink(missing_ok=True)
    before = services_status()
    run = subprocess.run(
        [sys.executable, "benchmarks/drills_cluster.py", "--short", "--only", "consumers"],
        cwd=ROOT,
        env={**os.environ, "BENCH_NO_PROGRESS": "1"},
        capture_output=True,
        text=True,
        timeout=880,
    )
    assert services_status() == before, "the drill crashed servers of its own, never the ones of this run"
    output = run.stdout[-3000:] + run.stderr[-3000:]
    assert REPORT.exists(), output
    [result] = json.loads(REPORT.read_text())
    assert result["drill"] == "consumers", output
    assert "failure" not in result, f"the drill got stuck: {result['failure']}\n{output}"
    assert result["killed"] == ["projector-2", "pusher-2"], result
    assert result["accepted"] > 0, result
    assert result["lost_in_postgres"] == result["lost_in_mongo"] == 0, result
    assert result["projection_equals_rebuild"], result
    assert result["missed_deliveries"] == result["duplicates"] == 0, result
    assert result["live_resumed_s"] is not None, result
    assert result["worst_delivery_s"] is not None, result
    assert run.returncode == 0, output

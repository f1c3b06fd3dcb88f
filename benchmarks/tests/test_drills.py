"""The short fault drills, as `make drills` runs them in full: nothing accepted is ever lost.

The drills crash the servers they run on, so they start a private instance of their own
(benchmarks/instance.py): the services this test run uses must come through untouched.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / ".local" / "bench" / "drills-short.json"
DRILLS = ["kafka", "projector", "pusher", "web", "redis", "mongo", "postgres"]


def services_status() -> str:
    """`scripts/services status` of the instance this test run uses: each server's pid."""
    return subprocess.run(
        [str(ROOT / "scripts" / "services"), "status"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.timeout(900)
def test_every_fault_drill_recovers_without_losing_or_repeating_a_message():
    REPORT.unlink(missing_ok=True)
    before = services_status()
    run = subprocess.run(
        [sys.executable, "benchmarks/drills.py", "--short"],
        cwd=ROOT,
        env={**os.environ, "BENCH_NO_PROGRESS": "1"},
        capture_output=True,
        text=True,
        timeout=880,
    )
    assert services_status() == before, "the drills crashed servers of their own, never the ones of this run"
    results = json.loads(REPORT.read_text())
    assert [r["drill"] for r in results] == DRILLS, run.stdout[-3000:] + run.stderr[-3000:]
    for result in results:
        assert result["accepted"] > 0, result
        assert result["recovery_s"] is not None, result
        assert result["lost_in_postgres"] == result["lost_in_mongo"] == 0, result
        assert result["projection_equals_rebuild"], result
        assert result["missed_deliveries"] == result["duplicates"] == 0, result
    web = next(r for r in results if r["drill"] == "web")
    assert web["reconnects"] > 0, "the subscribers of the killed web process reconnected and recovered"
    assert run.returncode == 0, run.stdout[-3000:]

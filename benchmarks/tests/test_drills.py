"""The short fault drills, as `make drills` runs them in full: nothing accepted is ever lost."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / ".local" / "bench" / "drills-short.json"
DRILLS = ["kafka", "projector", "pusher", "web", "redis", "mongo", "postgres"]


@pytest.mark.timeout(900)
def test_every_fault_drill_recovers_without_losing_or_repeating_a_message(kafka_bootstrap, redis_url, mongo_url):
    REPORT.unlink(missing_ok=True)
    run = subprocess.run(
        [sys.executable, "benchmarks/drills.py", "--short"], cwd=ROOT, capture_output=True, text=True, timeout=880
    )
    # The PostgreSQL drill restarted the server under this process too: reconnect for the tests after it.
    connections.close_all()
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

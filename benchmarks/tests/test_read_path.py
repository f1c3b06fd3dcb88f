"""The read-path benchmark, run small: it measures search and edits, and leaves its dataset as it was."""

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
REPORT = ROOT / ".local" / "bench" / "read_path.json"
# 1,000 messages in 10 rooms, user1 in one; the database keeps the dataset between runs.
SCALE = "0.001"
DATABASE = "chat_bench_read_1000"


def dataset_state() -> tuple[int, int]:
    """Events in the bench database's outbox, and messages not in their first revision."""
    url = urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{DATABASE}"))
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM outbox_events), (SELECT count(*) FROM messages WHERE revision > 0)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.mark.timeout(600)
def test_it_reports_search_and_edit_latencies_and_takes_the_edits_back():
    REPORT.unlink(missing_ok=True)
    env = {**os.environ, "BENCH_SCALE": SCALE, "BENCH_REQUESTS": "200", "BENCH_NO_PROGRESS": "1"}
    run = subprocess.run(
        [sys.executable, "benchmarks/read_path.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=580
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    reported = json.loads(REPORT.read_text())
    figures = {f["name"]: f for f in reported}
    for name, target in (("GET /query/search", 50), ("PATCH /command/message/{id}", 25)):
        assert figures[f"p99 {name}"]["target"] == target
        assert figures[f"p50 {name}"]["value"] > 0
    # Each latency has its count of failed requests after it: cold and warm reads, search, edit.
    failures = [f for f in reported if f["name"].strip().startswith("failed requests")]
    assert len(failures) == 6
    assert all(f["value"] == 0 for f in failures), failures
    # The projector's count is final when it has stopped: every event it was fed.
    counted = figures["  events counted by the projector"]
    assert counted["value"] == counted["target"], counted
    # Nothing the edits changed is left: the next run finds the dataset it expects and reuses it.
    assert dataset_state() == (1000 + 10 + 5, 0)

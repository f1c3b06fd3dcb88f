"""The short fault drills, as `make drills` runs them in full: nothing accepted is ever lost.

The drills crash the servers they run on, so they start a private instance of their own
(benchmarks/instance.py): the services this test run uses must come through untouched.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from benchmarks.instance import Instance

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / ".local" / "bench" / "drills-short.json"
DRILLS = ["kafka", "projector", "pusher", "web", "redis", "mongo", "postgres"]
# How long a drill waits for each step before it fails, and how long it may take in all to fail.
PATIENCE_S = 20
GIVE_UP_S = 120
BOUND_S = 240


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
        assert "failure" not in result, result
        assert result["accepted"] > 0, result
        assert result["recovery_s"] is not None, result
        assert result["lost_in_postgres"] == result["lost_in_mongo"] == 0, result
        assert result["projection_equals_rebuild"], result
        assert result["missed_deliveries"] == result["duplicates"] == 0, result
    web = next(r for r in results if r["drill"] == "web")
    assert web["reconnects"] > 0, "the subscribers of the killed web process reconnected and recovered"
    assert run.returncode == 0, run.stdout[-3000:]


def drills_command(*args: str) -> list[str]:
    return [sys.executable, "benchmarks/drills.py", "--short", "--only", "kafka", "--patience", str(PATIENCE_S), *args]


def every_connection_of(database_url: str) -> list[psycopg.Connection]:
    """Take every connection the server has left, as a second system on it would."""
    taken: list[psycopg.Connection] = []
    while True:
        try:
            taken.append(psycopg.connect(database_url, connect_timeout=5))
        except psycopg.OperationalError as refused:
            if "too many clients" in str(refused) or "remaining connection slots" in str(refused):
                return taken
            raise
        assert len(taken) < 100, "the server kept accepting connections"


@pytest.mark.timeout(600)
def test_a_drill_on_a_server_out_of_connections_fails_and_says_what_did_not_happen() -> None:
    with Instance.create("drills-test", {"CHAT_PG_MAX_CONNECTIONS": "10"}) as instance:
        instance.up("postgres")
        url = urlsplit(instance.environment()["DATABASE_URL"])
        taken = every_connection_of(urlunsplit(url._replace(path="/postgres")))
        try:
            run = subprocess.run(
                drills_command("--instance", instance.name),
                cwd=ROOT,
                env={**os.environ, "BENCH_NO_PROGRESS": "1"},
                capture_output=True,
                text=True,
                timeout=BOUND_S,
            )
        finally:
            for connection in taken:
                connection.close()
    assert run.returncode == 1, run.stdout[-3000:]
    failure = re.search(r"^drills? .*FAILED: .+ did not .+$", run.stdout, re.MULTILINE)
    assert failure, run.stdout[-3000:] + run.stderr[-3000:]
    assert "too many clients" in failure.group(0) or "remaining connection slots" in failure.group(0), failure.group(0)


@pytest.mark.timeout(600)
def test_a_drill_whose_read_store_stops_answering_fails_within_its_patience_naming_what_did_not_happen() -> None:
    with Instance.create("drills-test") as instance:
        drills = subprocess.Popen(
            drills_command("--instance", instance.name),
            cwd=ROOT,
            env={**os.environ, "BENCH_NO_PROGRESS": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output: list[str] = []
        posting, failed = threading.Event(), threading.Event()

        def read() -> None:
            assert drills.stdout is not None
            for line in drills.stdout:
                output.append(line)
                if line.startswith("drill kafka: posting"):
                    posting.set()
                if line.startswith("drill kafka FAILED:"):
                    failed.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        ferretdb = instance.pid("mongo")
        try:
            assert posting.wait(BOUND_S), "".join(output)[-3000:]
            # FerretDB 1.x stops answering for good when its pool of PostgreSQL connections runs dry.
            os.kill(ferretdb, signal.SIGSTOP)
            stopped = time.monotonic()
            failed.wait(BOUND_S)
            took = time.monotonic() - stopped
            os.kill(ferretdb, signal.SIGCONT)  # the drill's clean-up needs the read store
            drills.wait(BOUND_S)
        finally:
            os.kill(ferretdb, signal.SIGCONT)
            drills.kill()
            reader.join(10)
    text = "".join(output)
    assert drills.returncode == 1, text[-3000:]
    failure = next((line for line in output if line.startswith("drill kafka FAILED:")), None)
    assert failure is not None, text[-3000:]
    assert "not in MongoDB" in failure, failure
    # Its patience, after the broker's restart (about 20 s) and the drill's first seconds.
    assert took < GIVE_UP_S, f"the drill gave up {took:.0f} s after the read store stopped answering"

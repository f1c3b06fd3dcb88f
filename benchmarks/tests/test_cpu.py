"""CPU accounting of a run's processes, from the kernel's own accounts."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from benchmarks.cpu import Meter, postgres_seconds, spent, tree_seconds
from benchmarks.instance import service_pid_file
from infrastructure.testing.waiting import wait_for

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def test_a_process_counts_the_cpu_of_its_children_alive_and_ended():
    # The parent burns nothing itself; one child burns 0.5 s and ends, another burns as much and
    # stays. Python's start costs each of the three a few tens of milliseconds more.
    burn = BURN.format(seconds=0.5)
    script = (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {burn!r}])\n"
        f"alive = subprocess.Popen([sys.executable, '-c', {burn!r} + 'print(1, flush=True)\\ntime.sleep(30)'])\n"
        "time.sleep(30)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "1"  # the second child has burnt its 0.5 s
        assert 0.95 <= tree_seconds(parent.pid) < 1.45  # counted once each, not twice
    finally:
        for pid in reversed([parent.pid, *child_pids(parent.pid)]):
            os.kill(pid, 9)
        parent.wait()


def child_pids(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_gone_process_has_spent_nothing():
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert tree_seconds(gone.pid) == 0.0


@pytest.mark.integration
@pytest.mark.django_db
def test_postgresql_backends_count_under_the_database_they_serve(settings):
    home = Path(os.environ.get("CHAT_SERVICES_HOME") or Path(__file__).resolve().parents[2] / ".local")
    postmaster = int(service_pid_file(home, "postgres").read_text().split()[0])
    database = settings.DATABASES["default"]["NAME"]

    def group(name: str | None) -> str:
        return "mine" if name == database else "other"

    before = postgres_seconds(postmaster, group).get("mine", 0.0)
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{database}"
    with psycopg.connect(url) as conn:
        conn.execute("SELECT count(*) FROM generate_series(1, 5000000)").fetchone()
        spent = postgres_seconds(postmaster, group).get("mine", 0.0) - before
    assert spent >= 0.2


@pytest.mark.integration
@pytest.mark.django_db
def test_a_backend_that_ended_stays_under_its_database_not_the_servers(settings):
    # Its CPU moves to the postmaster's account when it ends; the meter saw it while it ran.
    home = Path(os.environ.get("CHAT_SERVICES_HOME") or Path(__file__).resolve().parents[2] / ".local")
    postmaster = int(service_pid_file(home, "postgres").read_text().split()[0])
    database = settings.DATABASES["default"]["NAME"]

    def group(name: str | None) -> str:
        return "server" if name is None else "mine" if name == database else "other"

    meter = Meter(postgres=(postmaster, group))

    before = meter.read()
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{database}"
    with psycopg.connect(url) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.execute("SELECT count(*) FROM generate_series(1, 5000000)").fetchone()
        meter.read()  # as the account's watch does while the run goes on
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10), "the backend did not end"
    used = spent(before, meter.read())

    assert used["mine"] >= 0.2
    assert used["server"] < 0.1, used

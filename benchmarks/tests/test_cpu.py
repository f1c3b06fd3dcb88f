"""CPU accounting of a run's processes, from the kernel's own accounts."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from benchmarks.cpu import Meter, spent, tree_seconds
from benchmarks.instance import pid_in, service_pid_file
from benchmarks.system import services_home
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


@dataclass
class ServicesDatabase:
    """The services' PostgreSQL as a test sees it: its postmaster, and this test's database."""

    postmaster: int
    name: str
    url: str

    def group(self, database: str | None) -> str:
        return "server" if database is None else "mine" if database == self.name else "other"


@pytest.fixture
def database(settings) -> ServicesDatabase:
    postmaster = pid_in(service_pid_file(services_home(dict(os.environ)), "postgres"))
    assert postmaster is not None, "the services' PostgreSQL is not running"
    name = settings.DATABASES["default"]["NAME"]
    return ServicesDatabase(postmaster, name, os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}")


BUSY = "SELECT count(*) FROM generate_series(1, 5000000)"


@pytest.mark.integration
@pytest.mark.django_db
def test_postgresql_backends_count_under_the_database_they_serve(database):
    meter = Meter(postgres=(database.postmaster, database.group))
    before = meter.read().get("mine", 0.0)
    with psycopg.connect(database.url) as conn:
        conn.execute(BUSY).fetchone()
        burnt = meter.read().get("mine", 0.0) - before
    assert burnt >= 0.2


@pytest.mark.integration
@pytest.mark.django_db
def test_a_backend_that_ended_stays_under_its_database_not_the_servers(database):
    # Its CPU moves to the postmaster's account when it ends; the meter saw it while it ran.
    meter = Meter(postgres=(database.postmaster, database.group))
    before = meter.read()
    with psycopg.connect(database.url) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.execute(BUSY).fetchone()
        meter.read()  # as the account's watch does while the run goes on
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10), "the backend did not end"
    used = spent(before, meter.read())

    assert used["mine"] >= 0.2
    assert used["server"] < 0.1, used

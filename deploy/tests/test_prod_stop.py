"""Stopping the local production-like run (`scripts/prod down`) leaves nothing of it running."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from deploy.tests.prod_run import ProdRun

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def status_of(run: ProdRun) -> dict[str, str]:
    return {line.split()[0]: line.split()[1] for line in run.script("status").splitlines()}


def test_down_stops_the_api_workers_whose_server_process_died():
    # granian's workers each listen on the port themselves (SO_REUSEPORT) and outlive a master
    # that is killed: the pid file names only the master, so the workers went unseen.
    run = ProdRun().start()
    try:
        master = int((run.directory / "run" / "api.pid").read_text())
        os.kill(master, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while status_of(run)["api"] == "running":
            assert time.monotonic() < deadline, "status never noticed the api's server process was gone"
            time.sleep(0.1)
        assert answers(run.api_port), "the api's workers stopped with their server process"
        run.script("down")
        assert not answers(run.api_port), f"the api's workers still serve after down\n{run.log_tails()}"
    finally:
        run.stop()

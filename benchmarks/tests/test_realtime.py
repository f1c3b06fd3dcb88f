"""The realtime benchmark runs the WebSocket server it is asked for, and measures that process."""

import os
from pathlib import Path

import pytest

from benchmarks.common import OUT_DIR, Processes, free_port
from benchmarks.realtime import SERVERS, options, report_name, start_web

LISTEN = "0A"  # the state of a listening socket in /proc/net/tcp


def listening_ports(pid: int) -> set[int]:
    """The TCP ports on which the process `pid` itself holds a listening socket."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except FileNotFoundError:  # closed since the listing: the server is still starting its work
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_it_runs_production_web_server_and_reports_under_its_usual_name_by_default():
    server = options([]).server
    assert server == "uvicorn"
    assert report_name(server) == "realtime"


def test_a_daphne_run_does_not_replace_the_figures_make_bench_sums_up():
    server = options(["--server", "daphne"]).server
    assert server == "daphne"
    assert report_name(server) == "realtime-daphne"


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_the_process_whose_memory_it_measures_is_the_server_itself(server):
    # The memory figure is the VmRSS of the started process: a wrapper that did not exec the
    # server (a shell, `env`) would be measured instead of it.
    port = free_port()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with Processes(dict(os.environ)) as processes:
        web = start_web(processes, server, port)
        assert listening_ports(web.pid) == {port}
        assert server in Path(f"/proc/{web.pid}/cmdline").read_bytes().decode()

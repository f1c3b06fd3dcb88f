"""The comparison with Centrifugo: every row measured on both servers, run small; and when a server is done closing."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bare_stomp, peer
from benchmarks.cpu import Meter

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / ".local" / "bench" / "peer.json"
RESULTS = ROOT / ".local" / "bench" / "peer_results.json"
MEASURED = ("connect", "memory", "last arrival", "burst p50", "burst p99", "big last arrival", "big connect")


# Centrifugo is built from the Go module proxy on a machine's first run: minutes, once.
@pytest.mark.integration
@pytest.mark.timeout(1200)
def test_a_small_run_measures_every_row_on_both_servers():
    REPORT.unlink(missing_ok=True)
    RESULTS.unlink(missing_ok=True)
    env = {**os.environ, "BENCH_NO_PROGRESS": "1"}
    sizes = ["--subscribers", "100", "--big", "150", "--rounds", "3", "--rounds-big", "1", "--burst", "5"]
    run = subprocess.run(
        [sys.executable, "benchmarks/peer.py", *sizes], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1150
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(RESULTS.read_text())
    assert set(results) == {"ours", "uvicorn", "centrifugo"}, run.stderr[-2000:]
    for server, figures in results.items():
        for key in MEASURED:
            assert figures[key] > 0, (server, key)
    # The kernel counts CPU in 10 ms ticks: a small run's deliveries (Centrifugo's 300 take about
    # 6 ms) may show none, while 100 of our connections take some 200 ms.
    for key in ("cpu: realtime tier", "cpu: the system", "connect cpu: realtime tier", "connect cpu: the system"):
        assert results["ours"][key] >= 0, key
    assert results["ours"]["connect cpu: realtime tier"] > 0
    assert results["ours"]["connect cpu: the system"] > 0
    # uvicorn alone connects 100 clients in some 25 ms of CPU.
    assert results["uvicorn"]["connect cpu: server"] > 0
    assert results["centrifugo"]["cpu: server"] >= 0
    assert results["centrifugo"]["connect cpu: server"] >= 0
    # Closing 100 of ours takes some 50 ms (a presence leave each); Centrifugo's may show none.
    assert results["ours"]["close cpu: realtime tier"] > 0
    assert results["centrifugo"]["close cpu: server"] >= 0
    names = {f["name"].strip() for f in json.loads(REPORT.read_text())}
    assert "ours / Centrifugo: one message to 100 subscribers, last arrival (median of 3)" in names
    assert "ours: connect and subscribe 100 clients" in names
    assert "uvicorn alone: connect and subscribe 100 clients" in names


BUSY = "while True: pass"
IDLE = "import time; time.sleep(60)"


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []

    def start(code: str) -> int:
        started.append(subprocess.Popen([sys.executable, "-c", code]))
        return started[-1].pid

    yield start
    for process in started:
        process.kill()
        process.wait()


def server_of(holder: int, other: int) -> peer.Server:
    """A server whose connections `holder` held, and whose account also counts `other` (a shared service)."""
    return peer.Server(
        name="test",
        protocol="stomp",
        ws_ports=[],
        room=1,
        tokens=[],
        publish=lambda count, rate: pytest.fail("nothing is sent"),
        holders={"holder": lambda: holder},
        meters={"tier": Meter({"holder": lambda: holder, "shared": lambda: other})},
    )


def test_quiet_once_the_processes_that_held_the_connections_are_while_a_shared_one_is_busy(processes):
    server_of(processes(IDLE), processes(BUSY)).wait_until_quiet()


def test_a_holder_that_stays_busy_is_named_with_what_it_spent(processes, monkeypatch):
    monkeypatch.setattr(peer, "QUIET_TIMEOUT_S", 2.5)
    with pytest.raises(RuntimeError, match=r"still busy 2.5 s after its clients left; CPU ms in the last 1 s:") as e:
        server_of(processes(BUSY), processes(IDLE)).wait_until_quiet()
    spent = ast.literal_eval(str(e.value).split(": ", 2)[2])
    assert spent["holder"] >= 500, spent
    assert spent["shared"] < 100, spent


def test_uvicorn_alone_answers_the_greeting_and_frames_a_message_as_the_client_reads_them():
    greeting = (
        "CONNECT\naccept-version:1.2\njwt_token:x\n\n\0"
        "SUBSCRIBE\nid:sub-0\ndestination:/topic/message/roomId/7\nreceipt:subscribed\n\n\0"
    )
    assert bare_stomp.connected_answer(greeting) == (
        "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0RECEIPT\nreceipt-id:subscribed\n\n\0"
    )
    assert bare_stomp.connected_answer("SEND\ndestination:/x\n\n\0") == ""
    frame = bare_stomp.message_frame(42, {"roomId": 7, "content": "hi"})
    head, _, rest = frame.partition(b"\n\n")
    body = rest.removesuffix(b"\0")
    assert head.startswith(b"MESSAGE\ndestination:/topic/message/roomId/7\n")
    assert f"content-length:{len(body)}".encode() in head.split(b"\n")
    assert json.loads(body)["messageId"] == 42


def test_uvicorn_alone_runs_with_the_web_roles_options():
    web_role = (ROOT / "deploy" / "entrypoint.sh").read_text().split("    web)", 1)[1].split(";;", 1)[0]
    for option in peer.WEB_ROLE_OPTIONS:
        assert option in " ".join(web_role.split()), option

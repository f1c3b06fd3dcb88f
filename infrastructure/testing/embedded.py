"""The server `make run` starts, for tests: its commands, with every backend embedded."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmarks.common import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
# The settings that name a real service: without them every backend is the embedded one.
BACKENDS = (
    "DATABASE_URL",
    "MONGO_URL",
    "REDIS_URL",
    "REDIS_CLUSTER",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_REPLICATION_FACTOR",
    "KAFKA_MIN_INSYNC_REPLICAS",
    "MONGO_DB_NAME",
    "FERRETDB_POSTGRES_URL",
)


class EmbeddedServer:
    def __init__(self, port: int, log: Path, env: dict[str, str]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.env = env

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def manage(self, code: str) -> str:
        """Run Python in `manage.py shell` on the server's own database; what it printed."""
        command = [sys.executable, "manage.py", "shell", "-c", code]
        return subprocess.run(command, cwd=ROOT, env=self.env, check=True, capture_output=True, text=True).stdout


@contextlib.contextmanager
def embedded_server(state: Path, **settings: str) -> Iterator[EmbeddedServer]:
    """`make run`'s commands with its state in `state` and these extra settings; the server runs
    until the block ends."""
    env = {k: v for k, v in os.environ.items() if k not in BACKENDS}
    env |= {"CHAT_STATE_DIR": str(state), **settings}
    for command in (["migrate", "--noinput", "-v0"], ["generate_keys", "--if-missing"], ["seed"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    port = free_port()
    log = state / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--insecure", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=60)
        yield EmbeddedServer(port, log, env)
    finally:
        server.terminate()
        server.wait(15)

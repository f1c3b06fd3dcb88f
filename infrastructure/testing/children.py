"""Processes a test starts, each writing its output to a file of its own that a failing test shows."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
TAIL_LINES = 40


def manage(*args: str) -> list[str]:
    """The command line of a management command, in this interpreter."""
    return [sys.executable, "manage.py", *args]


def database_url() -> str:
    """The URL of the database this test run made, for a process the test starts."""
    from django.conf import settings

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + settings.DATABASES["default"]["NAME"]))


class Children:
    """Start project processes with their stdout and stderr in files; stop whatever is left."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Run the command from the repository root; its output goes to `<name>.log`."""
        path = self.folder / f"{len(self.started) + 1:02d}-{name}.log"
        with open(path, "wb") as log:
            child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.started.append((name, child, path))
        return child

    def log_of(self, child: subprocess.Popen[bytes]) -> Path:
        """The file holding what this process wrote."""
        return next(path for _, started, path in self.started if started is child)

    def tails(self) -> str:
        """The last lines each process wrote, with how it ended, for a failure message."""
        parts = []
        for name, child, path in self.started:
            lines = path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
            state = "running" if child.poll() is None else f"exit code {child.returncode}"
            parts.append(f"--- {name} (pid {child.pid}, {state}), last {len(lines)} lines of {path}:")
            parts.extend(lines)
        return "\n".join(parts)

    def stop_all(self, timeout: float = 15.0) -> None:
        """Terminate what is still running; kill what does not stop within the timeout."""
        running = [child for _, child, _ in self.started if child.poll() is None]
        for child in running:
            child.terminate()
        for child in running:
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    """Processes for one test. Their tails go to stderr at teardown, which pytest shows only
    for a test that failed (a timeout included): a failure then says what the processes saw."""
    started = Children(tmp_path)
    try:
        yield started
    finally:
        if started.started:
            print(started.tails(), file=sys.stderr)
        started.stop_all()

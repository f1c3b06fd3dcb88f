"""CPU time of the processes of a run, read from the kernel's accounts of them (/proc/<pid>/stat).

A process's CPU is its user and system time, its descendants' (granian's workers, a broker's
threads are in its own), and what its exited children left in its account: a PostgreSQL
backend that ends is counted in the postmaster's. The backends are told apart by the database
their connection serves (in their process title), so the commands' PostgreSQL and the read
store's (FerretDB keeps its documents in PostgreSQL) are counted apart; a `Meter` keeps a
backend that ended since it last saw it under its database, with what it had spent then.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.load import process_tree

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
# "postgres: [cluster: ]user database host(port) activity"; the server's own processes
# (checkpointer, walwriter, ...) have one or two words after "postgres: ".
BACKEND = re.compile(r"^postgres: (?:\S+: )?\S+ (\S+) (?:\S+\(\d+\)|\[local\])")


def own_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of one process, in clock ticks (0 if it is gone)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        # After the name: state(0) ppid pgrp session tty tpgid flags minflt cminflt majflt
        # cmajflt utime(11) stime(12) cutime(13) cstime(14)
        return sum(int(v) for v in fields[11:15])
    return 0


def tree_seconds(pid: int) -> float:
    """CPU seconds of a process and its descendants, including their exited children."""
    return sum(own_ticks(member) for member in process_tree(pid)) * TICK_S


@dataclass(frozen=True)
class Backend:
    """A process of a PostgreSQL server: `key` tells a reused pid apart, `group` is where it counts."""

    key: tuple[int, int]  # (pid, start time in ticks)
    group: str
    seconds: float


def postgres_backends(postmaster: int, group_of: Callable[[str | None], str]) -> list[Backend]:
    """A PostgreSQL server's processes with their CPU seconds, grouped by `group_of(database)`;
    the server's own processes (and the postmaster, with its exited children) have database None."""
    backends = []
    for member in process_tree(postmaster):
        database, started = None, 0
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{member}/stat").read_text()
            started = int(stat[stat.rindex(")") + 2 :].split()[19])
            title = Path(f"/proc/{member}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if match := BACKEND.match(title.strip()):
                database = match.group(1)
        backends.append(Backend((member, started), group_of(database), own_ticks(member) * TICK_S))
    return backends


@dataclass
class Meter:
    """Named processes, and PostgreSQL grouped by database; `read()` is each group's CPU seconds so far.

    A backend that ends leaves its CPU to the postmaster's account, which counts as the server's:
    the group it served would lose all it had spent, and the server gain it. A backend this meter
    saw and that has ended since stays in its group with what it had spent when last seen, and
    the server's figure gives that back; only what it spent after that counts as the server's.
    """

    trees: dict[str, Callable[[], int | None]] = field(default_factory=dict)  # name -> its pid now
    postgres: tuple[int, Callable[[str | None], str]] | None = None
    _backends: dict[tuple[int, int], Backend] = field(default_factory=dict)  # each backend as last seen
    _lock: threading.Lock = field(default_factory=threading.Lock)  # a watch may read while another thread does

    def read(self) -> dict[str, float]:
        with self._lock:
            return self._read()

    def _read(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for name, pid_of in self.trees.items():
            pid = pid_of()
            seconds[name] = tree_seconds(pid) if pid else 0.0
        if self.postgres is not None:
            postmaster, group_of = self.postgres
            alive = {b.key: b for b in postgres_backends(postmaster, group_of)}
            server = group_of(None)
            for key, backend in self._backends.items():
                if key not in alive and backend.group != server:
                    seconds[backend.group] = seconds.get(backend.group, 0.0) + backend.seconds
                    seconds[server] = seconds.get(server, 0.0) - backend.seconds
            for backend in alive.values():
                seconds[backend.group] = seconds.get(backend.group, 0.0) + backend.seconds
            self._backends.update(alive)
        return seconds


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}

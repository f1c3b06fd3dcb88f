"""CPU time of the processes of a run, read from the kernel's accounts of them (/proc/<pid>/stat).

A process's CPU is its user and system time, its descendants' (granian's workers, a broker's
threads are in its own), and what its exited children left in its account: a PostgreSQL
backend that ends is counted in the postmaster's. The backends are told apart by the database
their connection serves (in their process title), so the commands' PostgreSQL and the read
store's (FerretDB keeps its documents in PostgreSQL) are counted apart.
"""

from __future__ import annotations

import contextlib
import os
import re
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


def postgres_seconds(postmaster: int, group_of: Callable[[str | None], str]) -> dict[str, float]:
    """CPU seconds of a PostgreSQL server's processes, grouped by `group_of(database)`; the
    server's own processes (and the postmaster, with its exited children) have database None."""
    seconds: dict[str, float] = {}
    for member in process_tree(postmaster):
        database = None
        with contextlib.suppress(OSError):
            title = Path(f"/proc/{member}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if match := BACKEND.match(title.strip()):
                database = match.group(1)
        group = group_of(database)
        seconds[group] = seconds.get(group, 0.0) + own_ticks(member) * TICK_S
    return seconds


@dataclass
class Meter:
    """Named processes, and PostgreSQL grouped by database; `read()` is each group's CPU seconds so far."""

    trees: dict[str, Callable[[], int | None]] = field(default_factory=dict)  # name -> its pid now
    postgres: tuple[int, Callable[[str | None], str]] | None = None

    def read(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for name, pid_of in self.trees.items():
            pid = pid_of()
            seconds[name] = tree_seconds(pid) if pid else 0.0
        if self.postgres is not None:
            for group, value in postgres_seconds(*self.postgres).items():
                seconds[group] = seconds.get(group, 0.0) + value
        return seconds


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}

"""Descriptor numbers past select()'s 1,024, as a process holding thousands of sockets has them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def descriptors_taken_below(limit: int) -> Iterator[None]:
    """Every free descriptor below `limit` in use, so the next one opened is numbered past it."""
    taken: list[int] = []
    while not taken or taken[-1] < limit:
        taken.append(os.open(os.devnull, os.O_RDONLY))
    try:
        yield
    finally:
        for fd in taken:
            os.close(fd)

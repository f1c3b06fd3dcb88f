"""Waiting in a test for something another thread or process does."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.02) -> bool:
    """Whether `condition()` came true within `timeout` seconds, asked every `interval`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False

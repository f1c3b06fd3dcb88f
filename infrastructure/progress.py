"""Progress bars for long-running commands: on stderr, and only where a person watches."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress_bar(total: int | None, desc: str, unit: str = "it", *, enabled: bool = True) -> tqdm[Any]:
    """A bar on stderr; silent when `enabled` is false or stderr is not a terminal."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not enabled or not sys.stderr.isatty(),
        dynamic_ncols=True,
    )

"""A socket check that works for any descriptor number.

select.select() refuses descriptors past FD_SETSIZE (1,024), and a web process holding thousands
of WebSockets opens its later sockets up there; poll() has no such limit.
"""

from __future__ import annotations

import select


def readable_now(fd: int) -> bool:
    """Whether reading `fd` would not block now: it has data, or the peer closed or broke it."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))

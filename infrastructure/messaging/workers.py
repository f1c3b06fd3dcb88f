"""Background roles (relay, projector, pusher) run in the web process in embedded mode.

Apps register a role's loop here from their AppConfig.ready(); `start_embedded` starts each
registered loop once, in a daemon thread, when the event bus is embedded. With Kafka the same
loops run as separate `manage.py` processes instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

RoleLoop = Callable[[threading.Event], None]

_roles: dict[str, RoleLoop] = {}
_started: dict[str, threading.Thread] = {}
_stop = threading.Event()
_lock = threading.Lock()


def register(name: str, loop: RoleLoop) -> None:
    """Declare a background role; the loop must return soon after the event is set."""
    _roles[name] = loop


def registered() -> list[str]:
    return sorted(_roles)


def start_embedded() -> list[str]:
    """Start every registered role that is not yet running; return the names started."""
    started = []
    with _lock:
        _stop.clear()
        for name, loop in _roles.items():
            if name in _started and _started[name].is_alive():
                continue
            thread = threading.Thread(target=_guarded, args=(name, loop), name=f"role-{name}", daemon=True)
            thread.start()
            _started[name] = thread
            started.append(name)
    if started:
        logger.info("embedded roles started: %s", ", ".join(started))
    return started


def stop_embedded(timeout: float = 5.0) -> None:
    _stop.set()
    with _lock:
        for thread in _started.values():
            thread.join(timeout)
        _started.clear()


def _guarded(name: str, loop: RoleLoop) -> None:
    try:
        loop(_stop)
    except Exception:
        logger.exception("embedded role %s stopped with an error", name)

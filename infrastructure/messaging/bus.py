"""The embedded event bus: in-process delivery of bus records to subscribed roles.

With Kafka configured the same handlers are fed by `manage.py consume_events`; here the relay
and the projector hand records straight to them, in order, on the publishing thread.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)

RecordHandler = Callable[[str, bytes], None]

_subscribers: dict[str, list[tuple[str, RecordHandler]]] = defaultdict(list)


def subscribe(role: str, topics: Iterable[str], handler: RecordHandler) -> None:
    for topic in topics:
        if (role, handler) not in _subscribers[topic]:
            _subscribers[topic].append((role, handler))


def unsubscribe(role: str) -> None:
    for topic in list(_subscribers):
        _subscribers[topic] = [(r, h) for r, h in _subscribers[topic] if r != role]


def dispatch(topic: str, value: bytes) -> None:
    """Deliver one record to every subscribed role; a failing role does not stop the others."""
    for role, handler in list(_subscribers.get(topic, ())):
        try:
            handler(topic, value)
        except Exception:
            logger.exception("embedded role %s failed on a %s record", role, topic)

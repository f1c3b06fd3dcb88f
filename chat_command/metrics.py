"""The command side's metrics read at scrape time."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from chat_command import outbox

logger = logging.getLogger(__name__)


class OutboxCollector(Collector):
    """How many outbox events wait for the relay, and how long the oldest has waited."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            count, oldest = outbox.pending_summary()
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even when the database does not
            logger.warning("could not read the outbox backlog: %s", exc)
            return
        yield GaugeMetricFamily("chat_outbox_pending_events", "Outbox events not yet published.", value=count)
        age = 0.0 if oldest is None else max(time.time() - oldest.timestamp(), 0.0)
        yield GaugeMetricFamily(
            "chat_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox event.", value=age
        )

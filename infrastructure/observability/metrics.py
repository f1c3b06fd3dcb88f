"""Prometheus metrics: what each process counts, and what /metrics reads at scrape time.

Counters, histograms and gauges below live in the process that updates them. Each process
exposes its own (the web role at /metrics, a worker role on `--metrics-port`), or, with
PROMETHEUS_MULTIPROC_DIR set, every process on the host writes them to that folder and any web
process's /metrics serves the sum. The outbox backlog and the consumer lag are not counted
anywhere: /metrics reads them from PostgreSQL and Kafka when it is scraped.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import REGISTRY, Collector

logger = logging.getLogger(__name__)
View = TypeVar("View", bound=Callable[..., Any])

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")

HTTP_LATENCY = Histogram(
    "chat_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
COMMANDS = Counter("chat_commands_total", "Commands handled, by command and outcome.", ["command", "outcome"])
EVENTS_RECORDED = Counter("chat_events_recorded_total", "Events written to the outbox, by type.", ["type"])
EVENTS_PUBLISHED = Counter("chat_events_published_total", "Outbox events the relay published, by type.", ["type"])
EVENTS_CONSUMED = Counter(
    "chat_events_consumed_total", "Events a consumer role handled, by role and type.", ["role", "type"]
)
EVENTS_DEAD_LETTERED = Counter("chat_events_dead_lettered_total", "Events sent to the dead-letter topic.", ["role"])
# livesum: with several processes, the sum over the processes still running.
WS_CONNECTIONS = Gauge("chat_websocket_connections", "Open WebSocket (STOMP) connections.", multiprocess_mode="livesum")
STOMP_SUBSCRIPTIONS = Gauge("chat_stomp_subscriptions", "Active STOMP subscriptions.", multiprocess_mode="livesum")
FRAMES_IN = Counter("chat_stomp_frames_received_total", "STOMP frames received, by command.", ["command"])
FRAMES_OUT = Counter("chat_stomp_frames_sent_total", "STOMP frames sent, by command.", ["command"])
LAYER_LAG = Gauge(
    "chat_channel_layer_lag_seconds",
    "How far a web process reads behind Redis pub/sub: the delay of its last ping's answer.",
    multiprocess_mode="livemax",
)
LAYER_FEED_LOST = Counter(
    "chat_channel_layer_feed_lost_total",
    "Times a web process lost its Redis subscriber connection (its clients closed with 4012).",
)

STOMP_COMMANDS = frozenset(
    {"CONNECT", "STOMP", "SUBSCRIBE", "UNSUBSCRIBE", "SEND", "DISCONNECT", "ACK", "NACK", "BEGIN", "COMMIT", "ABORT"}
)
# Children bound once: the push path counts every MESSAGE frame it writes.
SENT_CONNECTED, SENT_MESSAGE, SENT_RECEIPT, SENT_ERROR = (
    FRAMES_OUT.labels(command) for command in ("CONNECTED", "MESSAGE", "RECEIPT", "ERROR")
)


def counted_command(command: str) -> Callable[[View], View]:
    """Count each call of a command endpoint as ok, rejected (4xx) or failed (5xx)."""
    outcomes = {outcome: COMMANDS.labels(command, outcome) for outcome in ("ok", "rejected", "failed")}

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def counted(request: Any, *args: Any, **kwargs: Any) -> Any:
            response = view(request, *args, **kwargs)
            status = response.status_code
            outcomes["ok" if status < 400 else "rejected" if status < 500 else "failed"].inc()
            return response

        return cast(View, counted)

    return decorate


# FRAMES_IN's child per command, looked up once: labels() takes a lock and builds a key each call.
_frames_in: dict[str, Counter] = {}


def frame_received(command: str) -> None:
    """Count a received frame; commands outside STOMP's own count as OTHER (bounded labels)."""
    label = command if command in STOMP_COMMANDS else "OTHER"
    child = _frames_in.get(label)
    if child is None:
        child = _frames_in[label] = FRAMES_IN.labels(label)
    child.inc()


def count_by_type(counter: Counter, types: Iterable[str], *labels: str) -> None:
    tally: dict[str, int] = {}
    for type_name in types:
        tally[type_name] = tally.get(type_name, 0) + 1
    for type_name, count in tally.items():
        counter.labels(*labels, type_name).inc(count)


# --- Read at scrape time ----------------------------------------------------------------


_scrape_time: dict[str, Collector] = {}


def read_at_scrape_time(name: str, collector: Collector) -> None:
    """Add (or replace) a collector whose figures are read when /metrics is scraped; apps add
    theirs from their AppConfig.ready."""
    _scrape_time[name] = collector


def exposition() -> tuple[bytes, str]:
    """This process's metrics (or the host's, in multiprocess mode) plus the scrape-time ones."""
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS_DIR:
        multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
    else:
        registry.register(_ProcessMetrics())
    for collector in _scrape_time.values():
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _ProcessMetrics(Collector):
    """The default registry (this process's counters and the runtime's) inside another registry."""

    def collect(self) -> Iterator[Any]:
        return iter(REGISTRY.collect())


def add_metrics_arguments(parser: Any) -> None:
    """--metrics-port and --metrics-host for the worker roles' management commands."""
    parser.add_argument("--metrics-port", type=int, help="serve this process's metrics at :PORT/metrics")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address to serve them on (default 127.0.0.1)")


def serve_worker_metrics(port: int | None, host: str) -> None:
    """Expose a worker role's own metrics over HTTP on `host:port` (a daemon thread), if asked."""
    from prometheus_client import start_http_server

    if port is None:
        return
    start_http_server(port, addr=host)
    logger.info("metrics at http://%s:%d/metrics", host, port)


def forget_this_process() -> None:
    """In multiprocess mode, drop this process's live gauges when it exits."""
    if MULTIPROCESS_DIR:
        multiprocess.mark_process_dead(os.getpid(), MULTIPROCESS_DIR)


if MULTIPROCESS_DIR:
    # Web processes have no command of ours to end in; a clean exit still forgets its sockets.
    atexit.register(forget_this_process)

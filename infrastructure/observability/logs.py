"""Request ids and log formats: plain text by default, one JSON object a line when asked.

The request id of the HTTP request being served lives in a context variable, so every log line
written while serving it carries it without being passed around; the outbox stores it with the
request's events, and the relay and consumers log it back for each event.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # settings import this module before Django is set up
    from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept only if it is short and plain, so it cannot inject into logs or headers.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,64}$")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def sane_request_id(value: str | None) -> str | None:
    """The value if it is usable as a request id, else None."""
    return value if value is not None and _SANE_REQUEST_ID.match(value) else None


class RequestIdMiddleware:
    """Take a sane X-Request-ID or make one; log under it and echo it in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        # Also on the request: Django logs a 4xx/5xx ("django.request") after the middleware returned.
        request.request_id = request_id  # type: ignore[attr-defined]
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Give every record a request_id: its own `extra`, its `request`'s, or the one being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", None) or _request_id.get()
        return True


class PlainFormatter(logging.Formatter):
    """`time level logger message`, then `request_id=...` when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)  # the first line: a traceback follows it
        request_id = getattr(record, "request_id", None)
        return f"{line} request_id={request_id}" if request_id else line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


# What the web role's server writes at INFO for every WebSocket connection (uvicorn's line for
# the handshake, the websockets library's for open and close, both on uvicorn's logger): three
# lines a connection, a few per cent of a web process's CPU while thousands connect. Open
# connections are counted in /metrics; refused handshakes (403) are still logged.
PER_CONNECTION_LINES = frozenset({'%s - "WebSocket %s" [accepted]', "connection open", "connection closed"})


class PerConnectionLinesFilter(logging.Filter):
    """Drops the server's routine line for each WebSocket connection (PER_CONNECTION_LINES)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg in PER_CONNECTION_LINES)


def logging_config(log_format: str, level: str) -> dict[str, object]:
    """The LOGGING setting for LOG_FORMAT (`plain` or `json`) and LOG_LEVEL."""
    formatter = "json" if log_format == "json" else "plain"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "infrastructure.observability.logs.RequestIdFilter"},
            "per_connection": {"()": "infrastructure.observability.logs.PerConnectionLinesFilter"},
        },
        "formatters": {
            "plain": {"()": "infrastructure.observability.logs.PlainFormatter"},
            "json": {"()": "infrastructure.observability.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": formatter, "filters": ["request_id"]},
        },
        "root": {"handlers": ["console"], "level": level},
        # uvicorn's own logger keeps its handler and level (uvicorn set them up before Django).
        "loggers": {"django.db.backends": {"level": "INFO"}, "uvicorn.error": {"filters": ["per_connection"]}},
    }

"""Log formats and request ids: JSON lines when asked, ids from HTTP into logs and events."""

import io
import json
import logging
import logging.config

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from chat_command.models import OutboxEvent
from infrastructure.observability.logs import (
    JsonFormatter,
    PlainFormatter,
    RequestIdFilter,
    RequestIdMiddleware,
    logging_config,
)


def captured(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_a_json_line_has_time_level_logger_message_request_id_and_extra_fields():
    logger, stream = captured(JsonFormatter())
    logger.warning("room %s\nis busy", 7, extra={"event_id": "e-1", "roomId": 7})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, "a message with a newline still makes one line"
    entry = json.loads(lines[0])
    assert entry["level"] == "WARNING"
    assert entry["logger"] == logger.name
    assert entry["message"] == "room 7\nis busy"
    assert entry["request_id"] is None
    assert (entry["event_id"], entry["roomId"]) == ("e-1", 7)
    assert entry["time"].endswith("+00:00")


def test_a_json_line_carries_the_exception():
    logger, stream = captured(JsonFormatter())
    try:
        raise ValueError("broken")
    except ValueError:
        logger.exception("it failed")
    entry = json.loads(stream.getvalue())
    assert "ValueError: broken" in entry["exception"]


def serve(request_id_header: str | None, logger: logging.Logger) -> HttpResponse:
    def view(request):
        logger.info("serving")
        return HttpResponse("ok")

    request = RequestFactory().get("/healthz")
    if request_id_header is not None:
        request.META["HTTP_X_REQUEST_ID"] = request_id_header
    return RequestIdMiddleware(view)(request)


def test_lines_logged_while_serving_a_request_carry_its_id():
    logger, stream = captured(JsonFormatter())
    response = serve("checkout-42", logger)
    assert response["X-Request-ID"] == "checkout-42"
    assert json.loads(stream.getvalue())["request_id"] == "checkout-42"
    logger.info("after the request")
    assert json.loads(stream.getvalue().splitlines()[-1])["request_id"] is None


@pytest.mark.parametrize("unusable", ["x" * 65, "two words", "line\nbreak", "", "<script>"])
def test_an_unusable_incoming_id_is_replaced_by_a_new_one(unusable):
    logger, stream = captured(PlainFormatter())
    response = serve(unusable, logger)
    generated = response["X-Request-ID"]
    assert generated != unusable
    assert len(generated) == 32
    assert stream.getvalue().rstrip().endswith(f"request_id={generated}")


def test_djangos_own_line_about_a_failed_request_carries_its_id(client):
    logger, stream = captured(JsonFormatter())
    django_request = logging.getLogger("django.request")
    django_request.addHandler(logger.handlers[0])
    try:
        response = client.get("/query/nothing", HTTP_X_REQUEST_ID="lost-404")
    finally:
        django_request.removeHandler(logger.handlers[0])
    assert response.status_code == 401
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["request_id"]) for line in lines] == [("django.request", "lost-404")]


def test_every_response_gets_a_request_id(client):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.django_db
def test_a_command_records_its_request_id_with_its_events(user1, room):
    response = user1.post(
        "/command/message",
        {"roomId": room.room_id, "content": "traced"},
        content_type="application/json",
        HTTP_X_REQUEST_ID="trace-me-1",
    )
    assert response["X-Request-ID"] == "trace-me-1"
    row = OutboxEvent.objects.get(type="MessageSent", payload__messageId=response.json()["data"]["messageId"])
    assert row.request_id == "trace-me-1"


def test_the_web_servers_line_for_each_websocket_connection_is_dropped_and_its_other_lines_kept():
    # As uvicorn leaves its loggers before Django configures logging (an earlier test may have
    # left them otherwise): its handler on "uvicorn", "uvicorn.error" at INFO, both enabled.
    stream = io.StringIO()
    server, log = logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error")
    saved = [(x, x.handlers, x.propagate, x.level, x.disabled, x.filters) for x in (server, log)]
    server.handlers, server.propagate = [logging.StreamHandler(stream)], False
    log.handlers, log.propagate, log.filters = [], True, []
    for logger in (server, log):
        logger.setLevel(logging.INFO)
        logger.disabled = False
    try:
        logging.config.dictConfig(logging_config("plain", "INFO"))
        log.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/ws/chat")
        log.info("connection open")
        log.info("connection closed")
        log.info('%s - "WebSocket %s" 403', "127.0.0.1:5001", "/ws/chat")
        log.info("Uvicorn running on %s", "http://127.0.0.1:8000")
    finally:
        for logger, handlers, propagate, level, disabled, filters in saved:
            logger.handlers, logger.propagate, logger.disabled, logger.filters = handlers, propagate, disabled, filters
            logger.setLevel(level)
    assert stream.getvalue().splitlines() == [
        '127.0.0.1:5001 - "WebSocket /ws/chat" 403',
        "Uvicorn running on http://127.0.0.1:8000",
    ]

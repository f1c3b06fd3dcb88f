"""GET /metrics after real requests and commands, parsed as Prometheus parses it."""

import ipaddress
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chat_command.models import OutboxEvent
from infrastructure.testing.scrape import label_values, scrape, value

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LATENCY = "chat_http_request_duration_seconds_count"


def test_it_times_requests_by_url_pattern_never_by_raw_path(user1, room):
    before = scrape(user1)
    for _ in range(2):
        assert user1.get(f"/query/message/roomId/{room.room_id}").status_code == 200
    assert user1.get("/query/no/such/endpoint").status_code == 404
    after = scrape(user1)

    route = "query/message/roomId/<int:room_id>"
    labels = {"method": "GET", "route": route, "status": "200"}
    assert value(after, LATENCY, **labels) - value(before, LATENCY, **labels) == 2
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, LATENCY, **unmatched) - value(before, LATENCY, **unmatched) == 1
    assert not any(str(room.room_id) in r for r in label_values(after, LATENCY, "route"))


def test_it_counts_commands_by_type_and_outcome_and_the_events_they_record(user1, room):
    before = scrape(user1)
    sent = user1.post("/command/message", {"roomId": room.room_id, "content": "hi"}, content_type="application/json")
    blank = user1.post("/command/message", {"roomId": room.room_id, "content": "  "}, content_type="application/json")
    assert (sent.status_code, blank.status_code) == (200, 400)
    after = scrape(user1)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("chat_commands_total", command="SendMessage", outcome="ok") == 1
    assert delta("chat_commands_total", command="SendMessage", outcome="rejected") == 1
    assert delta("chat_events_recorded_total", type="MessageSent") == 1


def test_it_reports_the_outbox_backlog_and_the_age_of_its_oldest_event(user1, room):
    # No relay runs in this process: what the commands record stays pending.
    before = scrape(user1)
    user1.post("/command/message", {"roomId": room.room_id, "content": "waiting"}, content_type="application/json")
    OutboxEvent.objects.filter(type="RoomCreated", payload__roomId=room.room_id).update(
        occurred_at=timezone.now() - timedelta(minutes=5)
    )
    after = scrape(user1)

    assert value(after, "chat_outbox_pending_events") - value(before, "chat_outbox_pending_events") == 1
    assert value(after, "chat_outbox_oldest_pending_age_seconds") >= 300


def test_it_refuses_addresses_outside_the_allow_list():
    response = Client(REMOTE_ADDR="203.0.113.7").get("/metrics")
    assert response.status_code == 403
    assert "METRICS_ALLOW_FROM" in response.json()["message"]


def test_a_trusted_proxy_does_not_make_every_client_local(settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1")]
    proxied = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert proxied.get("/metrics").status_code == 403


def test_the_bearer_of_the_metrics_token_is_served_from_anywhere(settings):
    settings.METRICS_TOKEN = "scrape-secret"
    remote = Client(REMOTE_ADDR="203.0.113.7")
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert remote.get("/metrics").status_code == 403


def test_an_allowed_network_is_served(settings):
    settings.METRICS_ALLOW_FROM = [ipaddress.ip_network("10.0.0.0/8")]
    assert Client(REMOTE_ADDR="10.20.30.40").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


def test_it_answers_only_get(client):
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response["X-Error-Code"] == "method_not_allowed"

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat_command import relay
from infrastructure.messaging.topics import ensure_topics
from infrastructure.observability import metrics
from infrastructure.signals import stop_event_on_signals


class Command(BaseCommand):
    help = "Publish the transactional outbox to Kafka (one active relay per database; others stand by)."

    def add_arguments(self, parser: CommandParser) -> None:
        metrics.add_metrics_arguments(parser)

    def handle(self, *args: Any, metrics_port: int | None, metrics_host: str, **options: Any) -> None:
        if not settings.KAFKA_BOOTSTRAP_SERVERS:
            raise CommandError(
                "KAFKA_BOOTSTRAP_SERVERS is not set: with the embedded bus the relay runs inside the web process."
            )
        stop = stop_event_on_signals()
        metrics.serve_worker_metrics(metrics_port, metrics_host)
        ensure_topics()
        try:
            relay.run_relay(stop, relay.KafkaPublisher(), relay.default_coordinator())
        finally:
            metrics.forget_this_process()

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from chat_command import relay
from chatproject.signals import stop_event_on_signals


class Command(BaseCommand):
    help = "Publish the transactional outbox to Kafka (one active relay per database; others stand by)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.KAFKA_BOOTSTRAP_SERVERS:
            raise CommandError(
                "KAFKA_BOOTSTRAP_SERVERS is not set: with the embedded bus the relay runs inside the web process."
            )
        stop = stop_event_on_signals()
        relay.ensure_topics()
        relay.run_relay(stop, relay.KafkaPublisher(), relay.default_coordinator())

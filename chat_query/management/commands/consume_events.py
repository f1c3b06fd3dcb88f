from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from infrastructure.messaging import consumers
from infrastructure.observability import metrics
from infrastructure.signals import stop_event_on_signals


class Command(BaseCommand):
    help = "Run a consumer role (projector, pusher) as a Kafka consumer group member until SIGTERM/SIGINT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help=f"one of: {', '.join(consumers.role_names())}")
        metrics.add_metrics_arguments(parser)

    def handle(self, *args: Any, role: str, metrics_port: int | None, metrics_host: str, **options: Any) -> None:
        if not consumers.uses_kafka():
            raise CommandError(
                "KAFKA_BOOTSTRAP_SERVERS is not set: with the embedded bus the roles run in the web process."
            )
        try:
            instance = consumers.make_role(role)
        except KeyError as exc:
            raise CommandError(str(exc)) from None
        metrics.serve_worker_metrics(metrics_port, metrics_host)
        try:
            consumers.KafkaRunner(instance, stop_event_on_signals()).run()
        finally:
            metrics.forget_this_process()

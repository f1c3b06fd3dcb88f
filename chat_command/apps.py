from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


class ChatCommandConfig(AppConfig):
    name = "chat_command"

    def ready(self) -> None:
        from chat_command import relay
        from chat_command.metrics import OutboxCollector
        from infrastructure.messaging import workers
        from infrastructure.observability import metrics

        workers.register("relay", relay.embedded_relay)
        metrics.read_at_scrape_time("outbox", OutboxCollector())
        post_migrate.connect(_install_send_function, sender=self)


def _install_send_function(using: str, **kwargs: Any) -> None:
    """Keep PostgreSQL's send function the one chat_command.sending generates."""
    from chat_command import sending

    sending.install(connections[using])

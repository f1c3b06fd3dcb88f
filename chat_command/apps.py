from django.apps import AppConfig


class ChatCommandConfig(AppConfig):
    name = "chat_command"

    def ready(self) -> None:
        from chat_command import relay
        from chat_command.metrics import OutboxCollector
        from infrastructure.messaging import workers
        from infrastructure.observability import metrics

        workers.register("relay", relay.embedded_relay)
        metrics.read_at_scrape_time("outbox", OutboxCollector())

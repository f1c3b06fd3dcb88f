from django.apps import AppConfig


class ChatCommandConfig(AppConfig):
    name = "chat_command"

    def ready(self) -> None:
        from chat_command import relay
        from infrastructure.messaging import workers

        workers.register("relay", relay.embedded_relay)

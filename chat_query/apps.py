from django.apps import AppConfig


class ChatQueryConfig(AppConfig):
    name = "chat_query"

    def ready(self) -> None:
        from chat_query.projector import Projector, embedded_projector
        from infrastructure.messaging import consumers, workers

        consumers.register_role("projector", Projector)
        workers.register("projector", embedded_projector)

from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"

    def ready(self) -> None:
        from chatproject import consumers, workers
        from realtime.pusher import Pusher, embedded_pusher

        consumers.register_role("pusher", Pusher)
        workers.register("pusher", embedded_pusher)

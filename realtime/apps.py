from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from infrastructure.messaging import consumers, workers
        from realtime.origins import sockjs_cors
        from realtime.pusher import Pusher, embedded_pusher

        consumers.register_role("pusher", Pusher)
        workers.register("pusher", embedded_pusher)
        # A page that may open the WebSocket may use SockJS's info and HTTP transports too.
        check_request_enabled.connect(sockjs_cors)

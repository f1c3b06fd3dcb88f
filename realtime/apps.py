from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from accounts import signals
        from infrastructure.messaging import consumers, workers
        from realtime import api
        from realtime.origins import sockjs_cors
        from realtime.pusher import Pusher, embedded_pusher

        consumers.register_role("pusher", Pusher)
        workers.register("pusher", embedded_pusher)
        # A page that may open the WebSocket may use SockJS's info and HTTP transports too.
        check_request_enabled.connect(sockjs_cors)
        # Logout and deactivation close the customer's open sessions on every web process.
        signals.token_revoked.connect(api.on_token_revoked)
        signals.customer_deactivated.connect(api.on_customer_deactivated)

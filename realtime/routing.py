"""WebSocket routes of the web role: raw STOMP at /ws/chat, SockJS below it."""

from django.urls import URLPattern, URLResolver, path, re_path

from realtime.consumers import SockJsStompConsumer, StompConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/chat", StompConsumer.as_asgi()),
    path("ws/chat/websocket", StompConsumer.as_asgi()),
    re_path(r"^ws/chat/(?P<server>[^/.]+)/(?P<session>[^/.]+)/websocket$", SockJsStompConsumer.as_asgi()),
]

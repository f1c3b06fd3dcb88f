"""SockJS's HTTP side under /ws/chat/: its info and its transports other than the WebSocket
(which realtime/routing.py serves)."""

from django.urls import path, re_path

from realtime import views

# SockJS's server and session ids: no dots, no slashes.
SESSION = r"(?P<server>[^/.]{1,32})/(?P<session>[^/.]{1,64})"

urlpatterns = [
    path("info", views.sockjs_info, name="sockjs-info"),
    re_path(rf"^{SESSION}/(?P<transport>xhr|xhr_streaming|eventsource|htmlfile)$", views.receive),
    re_path(rf"^{SESSION}/xhr_send$", views.xhr_send),
]

from django.urls import path

from chat_command import views

urlpatterns = [
    path("room", views.create_room),
    path("message", views.send_message),
    path("read", views.mark_read),
]

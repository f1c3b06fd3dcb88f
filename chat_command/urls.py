from django.urls import path

from chat_command import views

urlpatterns = [
    path("room", views.create_room),
    path("message", views.send_message),
    path("message/<int:message_id>", views.change_message),
    path("message/<int:message_id>/reactions/<str:emoji>", views.reaction),
    path("read", views.mark_read),
]

from django.urls import path

from chat_command import views

urlpatterns = [
    path("room", views.create_room),
    path("room/<int:room_id>", views.rename_room),
    path("room/<int:room_id>/participants", views.add_participants),
    path("room/<int:room_id>/participants/me", views.leave_room),
    path("room/<int:room_id>/participants/<int:customer_id>", views.remove_participant),
    path("message", views.send_message),
    path("message/<int:message_id>", views.change_message),
    path("message/<int:message_id>/reactions/<str:emoji>", views.reaction),
    path("read", views.mark_read),
]

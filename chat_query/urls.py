from django.urls import path

from chat_query import views

urlpatterns = [
    path("rooms", views.rooms),
    path("message/roomId/<int:room_id>", views.latest_messages),
    path("message/roomId/<int:room_id>/index/<int:before>", views.older_messages),
    path("readMarkers/roomId/<int:room_id>", views.read_markers),
    path("search", views.search_messages),
]

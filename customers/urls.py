from django.urls import path

from customers import views

urlpatterns = [
    path("info", views.own_info),
    path("info/customerId/<int:customer_id>", views.info_by_id),
    path("info/phoneNumber/<str:text>", views.search_phone),
    path("info/fullName/<str:text>", views.search_full_name),
    path("fullName/customerId/<int:customer_id>", views.full_name_by_id),
    path("test", views.service_test),
]

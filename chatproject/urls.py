from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from chatproject import gateway, health, metrics_http

# Django tries these in order and every prefix is distinct: the busiest come first.
urlpatterns = [
    path("command/", include("chat_command.urls")),
    path("query/", include("chat_query.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_http.metrics_endpoint, name="metrics"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    path("admin/", admin.site.urls),
    path("auth/", include("accounts.urls")),
    path("customer/", include("customers.urls")),
    path("ws/chat/", include("realtime.urls")),
    path("", include("webui.urls")),
    # Everything else is answered as the reference's gateway answered unknown routes.
    re_path(r"^(?P<path>.*)$", gateway.route_not_found),
]

handler400 = "chatproject.errors.handler400"
handler403 = "chatproject.errors.handler403"
handler404 = "chatproject.errors.handler404"
handler500 = "chatproject.errors.handler500"

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from accounts import gateway

# Django tries these in order and every prefix is distinct: the busiest come first.
from infrastructure.http import health
from infrastructure.observability import metrics_http
from realtime import views as realtime_views

urlpatterns = [
    path("command/", include("chat_command.urls")),
    # Presence is realtime's: its one query endpoint sits among the read side's.
    path("query/onlineStatus/roomId/<int:room_id>", realtime_views.online_status),
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
    # Everything else is answered as the reference's gateway answered unknown routes, even a
    # path with a line break in it (which "." would not match).
    re_path(r"^(?P<path>[\s\S]*)$", gateway.route_not_found, name=metrics_http.UNMATCHED),
]

handler400 = "infrastructure.http.errors.handler400"
handler403 = "infrastructure.http.errors.handler403"
handler404 = "infrastructure.http.errors.handler404"
handler500 = "infrastructure.http.errors.handler500"

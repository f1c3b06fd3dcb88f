"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
# Persistent connections leak under ASGI: each request runs its sync code in a thread that does
# not serve the next one, so a connection kept for reuse is never reused nor closed until the
# server process ends (measured: 38-87 per process at 25 requests/s, enough to exhaust PostgreSQL).
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from infrastructure.messaging import workers  # noqa: E402
from realtime.origins import OriginCheck  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": OriginCheck(URLRouter(websocket_urlpatterns))})

if settings.RUN_EMBEDDED_WORKERS:
    workers.start_embedded()

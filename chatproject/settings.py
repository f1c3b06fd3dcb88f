"""The one settings module. Every backend is chosen by environment; unset means embedded."""

from __future__ import annotations

import secrets
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from chatproject import admin_middleware
from infrastructure.env import Env, database_from_url
from infrastructure.observability.logs import logging_config

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the embedded defaults keep their state: SQLite file, generated keys, secret key.
STATE_DIR = env.path("CHAT_STATE_DIR", BASE_DIR / ".local" / "state")


def _secret_key() -> str:
    configured = env.optional_text("DJANGO_SECRET_KEY")
    if configured:
        return configured
    key_file = STATE_DIR / "secret_key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.flag("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env.items("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.items("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "customers",
    "chat_command",
    "chat_query",
    "realtime",
    "webui",
]

MIDDLEWARE = [
    "infrastructure.observability.logs.RequestIdMiddleware",
    "infrastructure.observability.metrics_http.HttpMetricsMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "infrastructure.http.errors.JsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Sessions, CSRF, authentication and messages, under /admin/ only (chatproject/admin_middleware.py).
    "chatproject.admin_middleware.AdminOnlyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
SILENCED_SYSTEM_CHECKS = admin_middleware.SILENCED_CHECKS

ROOT_URLCONF = "chatproject.urls"
ASGI_APPLICATION = "chatproject.asgi.application"
WSGI_APPLICATION = "chatproject.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Backends: each one real when its variable is set, embedded otherwise -------------
DATABASE_URL = env.url("DATABASE_URL", ("postgres", "postgresql", "sqlite"))
DATABASES = {"default": database_from_url(DATABASE_URL, STATE_DIR / "chat.sqlite3")}
if "CONN_MAX_AGE" in DATABASES["default"]:
    # How long a thread keeps its PostgreSQL connection between requests. The ASGI entry point
    # sets 0: under ASGI a request's thread does not outlive it, so a kept connection is orphaned.
    DATABASES["default"]["CONN_MAX_AGE"] = env.number("DATABASE_CONN_MAX_AGE", 60, minimum=0)
MONGO_URL = env.url("MONGO_URL", ("mongodb",))
MONGO_DB_NAME = env.text("MONGO_DB_NAME", "chat_read_db")
# FerretDB only: its PostgreSQL database, where the read store adds the indexes FerretDB
# cannot create itself (chat_query/ferretdb.py). Unset on MongoDB.
FERRETDB_POSTGRES_URL = env.url("FERRETDB_POSTGRES_URL", ("postgres", "postgresql"))
REDIS_URL = env.url("REDIS_URL", ("redis", "rediss", "unix"))
# REDIS_URL names one node of a Redis Cluster, from which the client learns the others: keys,
# scripts and the channel layer (sharded pub/sub) then follow slots, moves and failovers.
REDIS_CLUSTER = env.flag("REDIS_CLUSTER", False)
if REDIS_CLUSTER and not (REDIS_URL or "").startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured("REDIS_CLUSTER needs REDIS_URL set to redis:// or rediss:// of one of its nodes.")
KAFKA_BOOTSTRAP_SERVERS = env.host_ports("KAFKA_BOOTSTRAP_SERVERS")
KAFKA_TOPIC_PARTITIONS = env.number("KAFKA_TOPIC_PARTITIONS", 3, minimum=1)
# Copies of each partition, and how many must have a write before the broker confirms it
# (producers ask acks=all): 3 and 2 on a three-broker cluster, so losing one loses nothing.
KAFKA_REPLICATION_FACTOR = env.number("KAFKA_REPLICATION_FACTOR", 1, minimum=1)
KAFKA_MIN_INSYNC_REPLICAS = env.number("KAFKA_MIN_INSYNC_REPLICAS", 1, minimum=1)
if KAFKA_MIN_INSYNC_REPLICAS > KAFKA_REPLICATION_FACTOR:
    raise ImproperlyConfigured("KAFKA_MIN_INSYNC_REPLICAS cannot exceed KAFKA_REPLICATION_FACTOR.")
# This deployment's share of services that others may use too (infrastructure/namespace.py): it
# heads its Kafka topics and consumer groups, Redis keys and channel-layer names. "" keeps the
# plain names.
CHAT_NAMESPACE = env.namespace("CHAT_NAMESPACE")
# Consumer groups are "<prefix>-<role>"; where a new group starts reading: earliest or latest.
KAFKA_GROUP_PREFIX = env.text("KAFKA_GROUP_PREFIX", f"{CHAT_NAMESPACE}.chat" if CHAT_NAMESPACE else "chat")
KAFKA_AUTO_OFFSET_RESET = env.text("KAFKA_AUTO_OFFSET_RESET", "earliest")
# How long the projector gathers events after the first of a batch: at live rates a batch of
# several events shares its read-store commands (benchmarks/pipeline.py measures what it saves).
PROJECTOR_LINGER_MS = env.number("PROJECTOR_LINGER_MS", 10, minimum=0)
# How often a consumer role commits its offsets while records keep coming (at once when it goes
# idle, loses partitions or stops). Each commit is a write the broker makes; a role that crashes
# takes up to this much again, which its handlers are made for (at-least-once).
KAFKA_COMMIT_INTERVAL_MS = env.number("KAFKA_COMMIT_INTERVAL_MS", 500, minimum=0)
# Background roles (relay, projector, pusher) run inside the web process when the event
# bus is embedded; with Kafka they are separate `manage.py` commands.
RUN_EMBEDDED_WORKERS = env.flag("CHAT_EMBEDDED_WORKERS", KAFKA_BOOTSTRAP_SERVERS is None)

if REDIS_URL:
    # Our own layer on Redis pub/sub (realtime/layer.py): channels-redis's list-based layer read
    # one message per round trip and dropped, unseen, what waited past its expiry.
    # Pub/sub channels are server-wide, so the namespace heads their names (read once, at start).
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "realtime.layer.RedisPubSubLayer",
            "CONFIG": {
                "url": REDIS_URL,
                "prefix": f"{CHAT_NAMESPACE}:chat" if CHAT_NAMESPACE else "chat",
                "cluster": REDIS_CLUSTER,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Auth -------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.Customer"
JWT_PRIVATE_KEY_PATH = env.path("JWT_PRIVATE_KEY_PATH", STATE_DIR / "keys" / "private_key.pem")
JWT_PUBLIC_KEY_PATH = env.path("JWT_PUBLIC_KEY_PATH", STATE_DIR / "keys" / "public_key.pem")
JWT_LIFETIME_SECONDS = env.number("JWT_LIFETIME_SECONDS", 86400, minimum=60)
# The reference browser client reads the token from document.cookie; secure default is HttpOnly.
JWT_COOKIE_HTTPONLY = env.flag("JWT_COOKIE_HTTPONLY", True)
JWT_COOKIE_SECURE = env.flag("JWT_COOKIE_SECURE", False)
# Failed logins allowed per window before 429, counted per username and per client address.
LOGIN_FAILURES_PER_USERNAME = env.number("LOGIN_FAILURES_PER_USERNAME", 5, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = env.number("LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env.number("LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)
# How long after sending a message its sender may edit it; 0 means no limit.
MESSAGE_EDIT_WINDOW_SECONDS = env.number("MESSAGE_EDIT_WINDOW_SECONDS", 86400, minimum=0)
# How many people a room may hold, counting everyone added after its creation.
ROOM_MAX_PARTICIPANTS = env.number("ROOM_MAX_PARTICIPANTS", 1000, minimum=2)
# Proxies (nginx) whose X-Forwarded-For is trusted for the client address: addresses or networks.
TRUSTED_PROXIES = env.networks("CHAT_TRUSTED_PROXIES", [])

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

# --- HTTP API ---------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env.origins("CORS_ALLOWED_ORIGINS", ["http://localhost:5500", "http://127.0.0.1:5500"])
CORS_ALLOW_CREDENTIALS = True
# Pages of other origins that may open the WebSocket with the user's cookie (realtime/origins.py).
# The server's own pages always may, and clients that send no Origin (not browsers) too.
WEBSOCKET_ALLOWED_ORIGINS = env.origins("WEBSOCKET_ALLOWED_ORIGINS", CORS_ALLOWED_ORIGINS)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.auth.JwtCookieAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated", "accounts.auth.SessionNotEnded"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "infrastructure.http.negotiation.FirstRendererNegotiation",
    "EXCEPTION_HANDLER": "infrastructure.http.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "chatproject API",
    "DESCRIPTION": "Real-time chat backend: auth, customers, chat commands and queries.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # An edit (PATCH) takes the whole of its small body, so its fields stay required.
    "COMPONENT_SPLIT_PATCH": False,
}

# --- Misc -------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves the browser client's files (and the API docs' assets) from the apps'
# static folders under every server (runserver, daphne, uvicorn, granian): no CDN, and no
# collectstatic step needed; after `collectstatic` it serves STATIC_ROOT as well.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# Without collectstatic there is no STATIC_ROOT, which is expected, not worth a warning.
warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Operations -------------------------------------------------------------------------
LOG_LEVEL = env.text("LOG_LEVEL", "INFO")
# plain: "time level logger message request_id=..."; json: one JSON object a line.
LOG_FORMAT = env.choice("LOG_FORMAT", "plain", ("plain", "json"))
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
# GET /metrics answers these client addresses, or anyone presenting `Authorization: Bearer <token>`.
METRICS_ALLOW_FROM = env.networks("METRICS_ALLOW_FROM", ["127.0.0.0/8", "::1"])
METRICS_TOKEN = env.optional_text("METRICS_TOKEN")
# Read by prometheus_client itself; checked here so a wrong folder stops the process at start.
PROMETHEUS_MULTIPROC_DIR = env.existing_folder("PROMETHEUS_MULTIPROC_DIR")

# One image for every role of the chat backend: web (daphne), relay, projector, pusher, and the
# one-shot init (migrations, keys). deploy/entrypoint.sh picks the role; see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CHAT_STATE_DIR=/var/lib/chat

# A fixed uid, so the named volumes that the roles share have one owner.
RUN groupadd --system --gid 10001 chat \
    && useradd --system --uid 10001 --gid chat --home-dir /app --shell /usr/sbin/nologin chat

WORKDIR /app
# Runtime packages only: requirements.txt lists them above its test and lint tools.
COPY requirements.txt ./
RUN sed '/^# Tests, lint and types/,$d' requirements.txt >/tmp/runtime.txt \
    && pip install -r /tmp/runtime.txt \
    && rm /tmp/runtime.txt

COPY --chown=root:root . .
# Static files of the admin and the API docs, collected once at build time. The throwaway
# secret only lets settings load here; the real one is generated on first start.
RUN DJANGO_SECRET_KEY=collectstatic-only CHAT_STATE_DIR=/tmp/build-state python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-state \
    && mkdir -p "$CHAT_STATE_DIR" && chown chat:chat "$CHAT_STATE_DIR"

USER chat
EXPOSE 8000
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]

#!/bin/sh
# Run one role of the chat backend in its container: init | api | web | relay | projector | pusher | healthcheck.
# api serves HTTP (granian, WSGI); web serves the WebSockets under /ws/ (uvicorn, ASGI); nginx
# routes between them. Both are the whole Django project, so either answers any path.
# Anything else is run as given (for example `manage.py shell`).
set -eu
# The project root: /app in the image, the checkout when run by hand.
cd "$(dirname "$0")/.."

case "${1:-web}" in
    init)
        # One-shot, before every other role: schema, keys and secret on first start, the Kafka
        # topics with their partitions, the read model's indexes.
        python manage.py migrate --noinput
        python manage.py generate_keys --if-missing
        python manage.py shell --command "from infrastructure.messaging.topics import ensure_topics; ensure_topics()"
        python manage.py ensure_indexes
        if [ "${CHAT_SEED_DEMO_USERS:-false}" = "true" ]; then
            python manage.py seed
        fi
        ;;
    api)
        # Its worker processes share one metrics folder, so any of them answers /metrics for all.
        export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-${TMPDIR:-/tmp}/chat-metrics-api-$$}"
        rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
        exec granian --interface wsgi --host "${CHAT_BIND:-0.0.0.0}" --port "${CHAT_WEB_PORT:-8000}" \
            --workers "${CHAT_API_WORKERS:-2}" --blocking-threads "${CHAT_API_THREADS:-4}" \
            --no-access-log chatproject.wsgi:application
        ;;
    web)
        # uvicorn's websockets-sansio with a direct send: STOMP sessions write their frames to the
        # socket at once and watch what its buffer holds (the slow-consumer cut-off); decision 0011.
        exec uvicorn chatproject.asgi:application --host "${CHAT_BIND:-0.0.0.0}" --port "${CHAT_WEB_PORT:-8000}" \
            --ws infrastructure.http.websocket:DirectSendProtocol --ws-per-message-deflate false \
            --no-proxy-headers --no-access-log --timeout-graceful-shutdown 10
        ;;
    relay)
        exec python manage.py relay_outbox
        ;;
    projector | pusher)
        exec python manage.py consume_events "$1"
        ;;
    healthcheck)
        shift
        exec python -m deploy.healthcheck "$@"
        ;;
    *)
        exec "$@"
        ;;
esac

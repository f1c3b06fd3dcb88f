#!/bin/sh
# Run one role of the chat backend in its container: init | web | relay | projector | pusher | healthcheck.
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
        python manage.py shell --command "from chat_command.relay import ensure_topics; ensure_topics()"
        python manage.py ensure_indexes
        if [ "${CHAT_SEED_DEMO_USERS:-false}" = "true" ]; then
            python manage.py seed
        fi
        ;;
    web)
        exec daphne --bind 0.0.0.0 --port "${CHAT_WEB_PORT:-8000}" \
            --websocket_timeout -1 --http-timeout 120 chatproject.asgi:application
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

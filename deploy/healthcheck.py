"""Container healthchecks of the project's roles: `python -m deploy.healthcheck api|web|relay|projector|pusher`.

Exit 0 when healthy, 1 with a one-line reason on stderr otherwise.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request

# A consumer role stores its status every 10 s; three missed reports mean its loop is stuck.
STATUS_MAX_AGE_S = 30.0
SERVERS = ("api", "web")  # HTTP and WebSocket servers: healthy when they answer /readyz
ROLES = (*SERVERS, "relay", "projector", "pusher")


def check_web() -> str | None:
    """The api or web process answers /readyz, which probes every backend."""
    url = f"http://127.0.0.1:{os.environ.get('CHAT_WEB_PORT', '8000')}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return None if response.status == 200 else f"/readyz answered {response.status}"
    except urllib.error.HTTPError as error:
        return f"/readyz answered {error.code}: {error.read(300).decode(errors='replace')}"
    except OSError as error:
        return f"/readyz unreachable: {error}"


def check_consumer(role: str) -> str | None:
    """This member of the role's group (consumers.member_name) reported its status to Redis recently.

    Its own status, not the group's latest: with two members, one stuck while the other reports
    must be unhealthy.
    """
    from django.conf import settings

    from infrastructure.messaging import consumers

    group, member = f"{settings.KAFKA_GROUP_PREFIX}-{role}", consumers.member_name()
    status = consumers.read_status(group, member)
    if status is None:
        return f"{group} member {member} has not reported a status yet"
    age = time.time() - float(status["updated"])
    return None if age <= STATUS_MAX_AGE_S else f"{group} member {member} last reported {age:.0f} s ago"


def check_relay() -> str | None:
    """The relay's backends, PostgreSQL and Kafka, answer (a standby relay is healthy too)."""
    from infrastructure.http import health

    for check in health.configured_checks():
        if check.name in ("database", "kafka"):
            try:
                check.probe()
            except Exception as error:  # noqa: BLE001 - any failure makes the role unhealthy
                return f"{check.name} unreachable: {error}"
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ROLES:
        print(f"usage: python -m deploy.healthcheck {'|'.join(ROLES)}", file=sys.stderr)
        return 2
    role = argv[0]
    if role not in SERVERS:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
        django.setup()
    problem = check_web() if role in SERVERS else check_relay() if role == "relay" else check_consumer(role)
    if problem:
        print(f"{role} unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

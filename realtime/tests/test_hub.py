import subprocess
from pathlib import Path

import pytest

from realtime.hub import push_from_sync

pytestmark = pytest.mark.integration
SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"


def test_publishing_from_sync_code_survives_a_redis_restart(redis_url):
    push_from_sync("room.1.message", {"body": "{}"})
    subprocess.run([str(SERVICES), "down", "redis"], check=True, capture_output=True)
    subprocess.run([str(SERVICES), "up", "redis"], check=True, capture_output=True)
    push_from_sync("room.1.message", {"body": "{}"})  # the pooled connection died with the old server

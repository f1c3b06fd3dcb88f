"""A test run keeps to a namespace of its own, and never passes its integration tests on stand-ins."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from infrastructure.testing import isolation

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = "chat_command/tests/test_commands.py::test_sending_a_message_returns_its_id_and_records_message_sent"
UNIT = "realtime/tests/test_stomp_codec.py::test_it_encodes_command_headers_blank_line_body_and_nul"


def test_the_run_has_a_namespace_of_its_own_that_its_processes_inherit():
    assert isolation.NAMESPACE.startswith("test-")
    assert settings.CHAT_NAMESPACE == isolation.NAMESPACE
    assert os.environ["CHAT_NAMESPACE"] == isolation.NAMESPACE


def test_without_the_services_integration_tests_fail_with_a_clear_message_and_unit_tests_still_run(tmp_path):
    unset = [*isolation._SERVICES, "CHAT_NAMESPACE"]
    environment = {name: value for name, value in os.environ.items() if name not in unset}
    environment["CHAT_STATE_DIR"] = str(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", INTEGRATION, UNIT],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert run.returncode != 0, run.stdout
    assert "1 passed, 1 error" in run.stdout, run.stdout
    assert "integration tests run against the real services; not configured: DATABASE_URL" in run.stdout, run.stdout

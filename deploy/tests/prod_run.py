"""The local production-like run (`scripts/prod`) as a test fixture: nginx in front of the roles.

`ProdRun().start()` brings up a run of its own (own ports, database, read-model database and
consumer groups) and `base_url` is where a client reaches it through nginx; `stop()` ends it and
drops its databases. Browser tests can take `base_url` from here to go through nginx too.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from benchmarks.instance import server_ports

ROOT = Path(__file__).resolve().parents[2]
# The tests that start a run allow it 300 s (their timeout mark, which counts a fixture's start):
# the start gets 240 of them, so a slow start fails here, saying how far it got, with time left
# to stop the run and report, instead of being cut off by the test's timeout.
START_TIMEOUT_S = 240
LOG_TAIL_LINES = 20


class ProdRun:
    def __init__(self, **settings: str) -> None:
        """`settings` are environment variables for the run's processes, e.g. LOG_LEVEL="INFO"."""
        self.name = f"prod_test_{uuid.uuid4().hex[:8]}"
        self.namespace = self.name.replace("_", "-")
        first = server_ports(4)
        self.port, self.web_ports, self.api_port = first, (first + 1, first + 2), first + 3
        self.env = {
            **os.environ,
            "CHAT_PROD_PORT": str(self.port),
            "CHAT_PROD_WEB_PORTS": " ".join(map(str, self.web_ports)),
            "CHAT_PROD_API_PORT": str(self.api_port),
            "CHAT_PROD_DB": self.name,
            # A deployment of its own beside the test run: its topics, groups and Redis keys too.
            "CHAT_NAMESPACE": self.namespace,
            "KAFKA_AUTO_OFFSET_RESET": "latest",
            "LOG_LEVEL": "WARNING",
            **settings,
        }
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.directory = ROOT / ".local" / "prod" / str(self.port)

    def start(self) -> ProdRun:
        try:
            self.script("up", timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            # Read before stop() deletes the run's folder with its logs.
            reached = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            failure = RuntimeError(
                f"scripts/prod up did not finish within {START_TIMEOUT_S} s; it got as far as:\n{reached[-3000:]}"
                f"\n{self.log_tails()}"
            )
            self.stop()
            raise failure from exc
        except BaseException:
            self.stop()
            raise
        return self

    def script(self, command: str, timeout: float = 60) -> str:
        result = subprocess.run(
            [str(ROOT / "scripts" / "prod"), command],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"scripts/prod {command} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def log_tails(self) -> str:
        """The last lines of each log of the run's processes."""
        parts = []
        for log in sorted((self.directory / "logs").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            parts.append(f"== {log}\n" + "\n".join(lines))
        return "\n".join(parts)

    def stop(self) -> None:
        self.script("down")
        self._drop_databases()
        self.manage("drop_namespace", self.namespace)
        shutil.rmtree(self.directory, ignore_errors=True)

    def manage(self, *arguments: str) -> str:
        """Run a management command in the environment of the run's processes."""
        command = [str(ROOT / ".venv" / "bin" / "python"), "manage.py", *arguments]
        result = subprocess.run(command, cwd=ROOT, env=self.environment(), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(arguments)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def environment(self) -> dict[str, str]:
        """The environment the run's processes have (`scripts/prod env`)."""
        environment = {**self.env}
        for line in self.script("env").splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            environment[name] = shlex.split(value)[0]
        return environment

    def _drop_databases(self) -> None:
        import psycopg
        import pymongo

        parts = urlsplit(os.environ["DATABASE_URL"])
        with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(os.environ["MONGO_URL"])
        try:
            client.drop_database(self.name)
        finally:
            client.close()

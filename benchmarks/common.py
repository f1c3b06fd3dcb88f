"""Shared pieces of the benchmarks: a bench database, the project's processes, reporting."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / ".local" / "bench"
PYTHON = sys.executable


def require_services() -> dict[str, str]:
    """The environment of the real services (`scripts/services env`), failing clearly without it."""
    missing = [
        v for v in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "MONGO_URL") if not os.environ.get(v)
    ]
    if missing:
        sys.exit(f'benchmarks run against the real services: eval "$(scripts/services env)" first ({missing}).')
    return dict(os.environ)


def bench_environment(
    name: str, services: dict[str, str] | None = None, namespace: str = "bench", database: str | None = None
) -> dict[str, str]:
    """Environment for the project's processes: a database of the benchmark's own (`database`, by
    default `name`; created if missing), a new namespace.

    `services` are the variables of `scripts/services env` (default: this process's environment).
    The namespace, `<namespace>-<8 hex>`, heads the run's Kafka topics and consumer groups and its
    Redis keys, so nothing else on the services sees its events; `drop_namespace` deletes them.
    """
    env = {**os.environ, **services} if services is not None else require_services()
    parts = urlsplit(env["DATABASE_URL"])
    database = database or name
    env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{database}"))
    env["MONGO_DB_NAME"] = name
    env["CHAT_STATE_DIR"] = str(OUT_DIR / name)
    env["LOG_LEVEL"] = "WARNING"
    env["CHAT_NAMESPACE"] = f"{namespace}-{uuid.uuid4().hex[:8]}"
    # The settings' default when a namespace is set; spelled out for the benchmarks that wait for
    # their groups by name. Groups of their own go under the same prefix: `drop_namespace` ends them.
    env["KAFKA_GROUP_PREFIX"] = f"{env['CHAT_NAMESPACE']}.chat"
    _create_database(parts, database)
    return env


def drop_database(env: dict[str, str]) -> None:
    """Drop the run's PostgreSQL database; whoever is still connected to it is disconnected."""
    import psycopg

    parts = urlsplit(env["DATABASE_URL"])
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def drop_namespace(env: dict[str, str]) -> None:
    """Delete the run's Kafka topics, consumer groups and Redis keys; its processes have stopped."""
    if not any(ROOT.glob("*/management/commands/drop_namespace.py")):
        # ISSUE 17 WIRING: `manage.py drop_namespace` is not in this tree yet; the run's topics,
        # groups and keys stay on the services under its namespace.
        print(f"namespace {env['CHAT_NAMESPACE']} not dropped: no drop_namespace command", file=sys.stderr)
        return
    try:
        run = subprocess.run(
            [PYTHON, "manage.py", "drop_namespace", env["CHAT_NAMESPACE"]],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        print(f"namespace {env['CHAT_NAMESPACE']} not dropped: drop_namespace took over 120 s", file=sys.stderr)
        return
    # Called on the way out, maybe after a failure: a warning, never an exception that hides it.
    if run.returncode != 0:
        print(f"namespace {env['CHAT_NAMESPACE']} not dropped: {run.stderr.strip()[-500:]}", file=sys.stderr)


def _create_database(parts, name: str) -> None:
    import psycopg

    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> None:
    """Run a management command; raise if it fails or takes longer than `timeout` seconds."""
    subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, timeout=timeout
    )


def progress(total: int | None, desc: str, unit: str = "it"):
    """A progress bar on stderr, off when stderr is not a terminal or BENCH_NO_PROGRESS is set."""
    from infrastructure.progress import progress_bar

    return progress_bar(total, desc, unit, enabled=not os.environ.get("BENCH_NO_PROGRESS"))


def progress_over(items, total: int, desc: str, unit: str = "it"):
    """Iterate over `items` with a progress bar (see `progress`)."""
    with progress(total, desc, unit) as bar:
        for item in items:
            yield item
            bar.update(1)


def setup_django(env: dict[str, str], *, seed: bool = True) -> None:
    """Migrate the bench database, write the keys (and seed), then set Django up in this process."""
    manage(env, "migrate", "--noinput")
    manage(env, "generate_keys", "--if-missing")
    if seed:
        manage(env, "seed")
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "chatproject.settings"
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Processes:
    """Child processes of one benchmark, all stopped on exit."""

    env: dict[str, str]
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *command: str) -> subprocess.Popen[bytes]:
        name = command[-1] if command[0] == "env" else Path(command[0]).name
        log = open(OUT_DIR / f"{name}-{len(self.children)}.log", "wb")  # noqa: SIM115
        child = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.children.append(child)
        return child

    def web(self, port: int) -> None:
        """The HTTP (api) role, as production runs it."""
        self.start(*api_command(port))
        wait_for_port(port)

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Whether `condition` held within `timeout` seconds, checked every `interval`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = True

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value < self.target


def report(benchmark: str, figures: list[Figure]) -> None:
    """Print the figures against their targets and write them as JSON under .local/bench/."""
    print(f"\n{benchmark}")
    print(f"{'figure':<52} {'value':>12} {'target':>14}  met")
    for f in figures:
        target = "" if f.target is None else f"{'>=' if f.higher_is_better else '<'} {f.target:g} {f.unit}"
        met = {True: "yes", False: "NO", None: "-"}[f.met]
        print(f"{f.name:<52} {f.value:>9.1f} {f.unit:<3}{target:>14}  {met}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{benchmark}.json"
    path.write_text(
        json.dumps(
            [{**f.__dict__, "met": f.met} for f in figures],
            indent=2,
        )
    )
    print(f"(written to {path.relative_to(ROOT)})")


def role_command(role: str, port: int) -> list[str]:
    """A server role exactly as production starts it (deploy/entrypoint.sh), on loopback.

    `api` is HTTP on granian (WSGI, two worker processes); `web` is the WebSockets on uvicorn
    with its direct send (`--ws infrastructure.http.websocket:DirectSendProtocol`, decision 0011)
    and no per-message deflate.
    """
    return [
        "env",
        f"PATH={Path(PYTHON).parent}:{os.environ.get('PATH', '')}",
        "CHAT_BIND=127.0.0.1",
        f"CHAT_WEB_PORT={port}",
        str(ROOT / "deploy" / "entrypoint.sh"),
        role,
    ]


def uvicorn_command(port: int) -> list[str]:
    """The WebSocket web role as production runs it."""
    return role_command("web", port)


def api_command(port: int) -> list[str]:
    """The HTTP api role as production runs it."""
    return role_command("api", port)


@dataclass
class Post:
    """One POST /command/message of an open-loop run."""

    index: int
    sent: float  # perf_counter() just before the request
    elapsed_ms: float
    status: int  # 0 when the connection failed
    body: bytes


def open_loop_posts(
    port: int, token: str, rate: float, total: int, message_for: Callable[[int], dict[str, object]]
) -> list[Post]:
    """Send `total` posts at `rate` per second on a schedule, however slow the answers."""
    start = time.monotonic() + 0.5
    counter = iter(range(total))
    lock = threading.Lock()
    posts: list[Post] = []
    bar = progress(total, f"POST /command/message at {rate:g}/s", "req")

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json", "Cookie": f"jwt_token={token}"}
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                conn.request("POST", "/command/message", json.dumps(message_for(index)), headers)
                response = conn.getresponse()
                status, body = response.status, response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                status, body = 0, b""
            post = Post(index, sent, (time.perf_counter() - sent) * 1000, status, body)
            with lock:
                posts.append(post)
                bar.update(1)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bar.close()
    return posts


def ensure_customers(usernames: list[str], full_name: Callable[[str], str]) -> None:
    """Create the bench customers that do not exist yet (no usable password)."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import Customer

    existing = set(Customer.objects.filter(username__in=usernames).values_list("username", flat=True))
    unusable = make_password(None)
    Customer.objects.bulk_create(
        Customer(username=u, password=unusable, full_name=full_name(u), email=f"{u}@example.com")
        for u in usernames
        if u not in existing
    )

"""The compiled load client (`benchmarks/loadgen/`, Go), built on first use, and its results.

Python threads and an asyncio loop cost more CPU per post and per delivery than the server
roles they load: on two cores they take the CPU the system under test needs. `loadgen` posts
and receives for a few microseconds of CPU each; its own CPU is measured and reported apart.

- `binary()`: `go build` into `.local/cache/loadgen/`, again only when its source changed
  (its modules under `.local/cache/go`, as `scripts/services` builds the FerretDB launcher).
- `hammer`: closed loop, as many posts as `connections` connections can make.
- `post`: open loop at a fixed rate; each post's room, send time, status and messageId (or,
  for a comparison, publications through Centrifugo's server API, numbered by the client).
- `Subscribers`: STOMP clients of rooms' message topics in one process (or Centrifugo clients
  of channels named by the rooms' numbers); each delivery's time.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import OUT_DIR, ROOT

SOURCE = ROOT / "benchmarks" / "loadgen"
CACHE = ROOT / ".local" / "cache"
BINARY = CACHE / "loadgen" / "loadgen"


_built: Path | None = None


def binary() -> Path:
    """The load client, built if missing or older than its source (checked once a process)."""
    global _built
    if _built is None:
        _built = _build()
    return _built


def _build() -> Path:
    digest = hashlib.sha256()
    for path in sorted(SOURCE.glob("*")):
        digest.update(path.name.encode() + path.read_bytes())
    version = subprocess.run(["go", "version"], capture_output=True, text=True, check=True).stdout
    digest.update(version.encode())
    stamp = BINARY.with_suffix(".sha256")
    if BINARY.exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return BINARY
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    print("building the load client (benchmarks/loadgen)", flush=True)
    partial = BINARY.with_name(f"loadgen.{os.getpid()}.tmp")  # builds at once do not share it
    built = subprocess.run(
        ["go", "build", "-trimpath", "-o", str(partial), "."],
        cwd=SOURCE,
        env=go_environment(),
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        raise RuntimeError(f"go build of benchmarks/loadgen failed:\n{built.stderr[-2000:]}")
    os.replace(partial, BINARY)
    stamp.write_text(digest.hexdigest())
    return BINARY


def go_environment() -> dict[str, str]:
    """The Go toolchain's settings: modules and build cache under `.local/cache/go`, no network
    beyond the module proxy, no C compiler."""
    go = CACHE / "go"
    return {
        **os.environ,
        "GOPATH": str(go / "path"),
        "GOMODCACHE": str(go / "mod"),
        "GOCACHE": str(go / "cache"),
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=readonly -buildvcs=false",
        "CGO_ENABLED": "0",
    }


def _rooms(rooms: Iterable[int]) -> str:
    return ",".join(str(r) for r in rooms)


@dataclass
class Hammered:
    requests: int
    rps: float  # answered with a 200, per second
    p50_ms: float  # of the 200s
    p99_ms: float
    non_200: int  # other answers, or none


def hammer(port: int, token: str, rooms: list[int], connections: int, seconds: float, warmup: float = 3) -> Hammered:
    """Closed loop: each connection posts as soon as its last post is answered."""
    out = subprocess.run(
        [
            str(binary()),
            "hammer",
            f"-url=http://127.0.0.1:{port}/command/message",
            f"-token={token}",
            f"-rooms={_rooms(rooms)}",
            f"-connections={connections}",
            f"-duration={seconds}",
            f"-warmup={warmup}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + warmup + 60,
    ).stdout
    result = json.loads(out)
    return Hammered(int(result["requests"]), result["rps"], result["p50_ms"], result["p99_ms"], int(result["non_200"]))


@dataclass
class Post:
    room_id: int
    due_ns: int  # time.time_ns() the schedule gave it
    sent_ns: int  # when it went out: later than due when every connection was busy
    done_ns: int  # when its answer came (or the request failed)
    status: int  # 0 when no HTTP answer came
    message_id: int | None

    @property
    def late_ms(self) -> float:
        return (self.sent_ns - self.due_ns) / 1e6


class Posts:
    """An open-loop `loadgen post` run in the background; `wait()` gives its posts."""

    def __init__(
        self,
        port: int,
        token: str,
        rooms: list[int],
        rate: float,
        seconds: float,
        label: str,
        connections: int = 256,
        *,
        centrifugo_api_key: str = "",
        first_id: int = 1,
        cut: bool = False,
    ) -> None:
        """Posts to `POST /command/message` at `port` as the customer of `token`; with
        `centrifugo_api_key`, publications to Centrifugo's `POST /api/publish` at `port`
        instead, numbered from `first_id`. With `cut`, nothing is sent once `seconds` are over:
        the posts a slow server kept waiting for a connection until then are not made."""
        self.seconds = seconds
        if centrifugo_api_key:
            target = [f"-url=http://127.0.0.1:{port}/api/publish", f"-centrifugo-api-key={centrifugo_api_key}"]
            target.append(f"-first-id={first_id}")
        else:
            target = [f"-url=http://127.0.0.1:{port}/command/message", f"-token={token}"]
        self.process = subprocess.Popen(
            [
                str(binary()),
                "post",
                *target,
                f"-rooms={_rooms(rooms)}",
                f"-rate={rate}",
                f"-duration={seconds}",
                f"-label={label}",
                f"-connections={connections}",
                *(["-cut"] if cut else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self) -> list[Post]:
        try:
            out, err = self.process.communicate(timeout=self.seconds + 90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        if self.process.returncode != 0:
            raise RuntimeError(f"loadgen post failed: {err[-1000:]}")
        posts = []
        for line in out.splitlines():
            room, due, sent, done, status, message_id = (int(field) for field in line.split())
            posts.append(Post(room, due, sent, done, status, message_id if status == 200 and message_id else None))
        return posts


class Subscribers:
    """`loadgen subscribe`: one STOMP client per (token, room), spread over the WebSocket ports
    (with `protocol="centrifugo"`, Centrifugo clients of the rooms' channels).

    `start` returns once every one of them has its subscription confirmed; `stop` ends them
    and reads when each message reached each subscriber.
    """

    PATHS = {"stomp": "/ws/chat", "centrifugo": "/connection/websocket"}

    def __init__(
        self, subscriptions: list[tuple[str, int]], ports: list[int], name: str = "subscribers", protocol: str = "stomp"
    ) -> None:
        self.subscriptions = subscriptions
        self.ports = ports
        self.protocol = protocol
        self.arrivals_path = OUT_DIR / f"{name}.arrivals"
        self.list_path = OUT_DIR / f"{name}.subscriptions"
        self.log_path = OUT_DIR / f"{name}.log"
        self.process: subprocess.Popen[str] | None = None
        self.reconnects = 0
        # From the first connection's start to the last subscription's confirmation.
        self.connect_seconds = 0.0
        # For each subscription (by index), each messageId's first arrival (time.time_ns()).
        self.arrivals: dict[int, dict[int, int]] = {n: {} for n in range(len(subscriptions))}
        self.deliveries = 0  # arrivals read, repeats included
        self._read_to = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 300) -> None:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        self.list_path.write_text("".join(f"{token} {room}\n" for token, room in self.subscriptions))
        urls = ",".join(f"ws://127.0.0.1:{port}{self.PATHS[self.protocol]}" for port in self.ports)
        self.process = subprocess.Popen(
            [
                str(binary()),
                "subscribe",
                f"-protocol={self.protocol}",
                f"-urls={urls}",
                f"-subscriptions={self.list_path}",
                f"-out={self.arrivals_path}",
            ],
            stdout=subprocess.PIPE,
            stderr=open(self.log_path, "w"),  # noqa: SIM115 - the child owns it
            text=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._await_ready, args=(ready,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise RuntimeError(
                    f"{len(self.subscriptions)} subscribers were not all subscribed within {timeout:g} s"
                    f" (exit status {self.process.returncode}; see {self.log_path})"
                )

    def _await_ready(self, ready: threading.Event) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("ready"):  # "ready N elapsed_ns"
                self.connect_seconds = int(line.split()[2]) / 1e9
                ready.set()
                return

    def poll(self) -> None:
        """Read the arrivals written since the last look (the client writes them every 100 ms)."""
        with open(self.arrivals_path, "rb") as file:
            file.seek(self._read_to)
            text = file.read()
        complete = text.rfind(b"\n") + 1
        self._read_to += complete
        for line in text[:complete].splitlines():
            subscription, message_id, at = (int(field) for field in line.split())
            self.arrivals[subscription].setdefault(message_id, at)
            self.deliveries += 1

    def missing(self, accepted: dict[int, set[int]]) -> int:
        """Deliveries not made yet: accepted messages of its room that a subscriber lacks."""
        return sum(
            len(accepted.get(room, set()) - self.arrivals[n].keys()) for n, (_, room) in enumerate(self.subscriptions)
        )

    def stop(self) -> None:
        """End the clients and read the last arrivals."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        for word in out.split():
            if word.startswith("reconnects="):
                self.reconnects = int(word.split("=", 1)[1])
        self.poll()

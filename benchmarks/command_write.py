"""Write path: POST /command/message with concurrent clients, and commit-to-Kafka delay.

Runs the api role (granian, as deploy/entrypoint.sh starts it) and the outbox relay against the
real services, in a database and a namespace (`bench-<hex>`, dropped at the end) of its own,
with 100 rooms. Phase 1 drives the endpoint as hard as 8 connections can (the compiled load client,
benchmarks/loadgen); phase 2 sends an open-loop 200 commands/s while a consumer reads every event
back from Kafka and measures how long after its commit it became readable.

    eval "$(scripts/services env)"; .venv/bin/python benchmarks/command_write.py
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import loadgen
from benchmarks.common import (
    OUT_DIR,
    Figure,
    Processes,
    bench_environment,
    drop_namespace,
    free_port,
    open_loop_posts,
    percentile,
    report,
    setup_django,
)

DB_NAME = "chat_bench_write"
ROOMS = 100
THROUGHPUT_SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
RATE = 200


def prepare(env: dict[str, str]) -> list[int]:
    setup_django(env)
    from chat_command.models import RoomParticipant
    from chat_command.services import NewRoom, do_create_room

    rooms = list(RoomParticipant.objects.filter(customer_id=1).values_list("room_id", flat=True))
    while len(rooms) < ROOMS:
        rooms.append(do_create_room(1, NewRoom(f"bench room {len(rooms)}", [2])).room_id)
    return rooms[:ROOMS]


def login(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request(
        "POST",
        "/auth/login",
        json.dumps({"username": "user1", "password": "123"}),
        {"Content-Type": "application/json"},
    )
    response = conn.getresponse()
    response.read()
    match = re.search(r"jwt_token=([^;]+)", response.getheader("Set-Cookie") or "")
    if response.status != 200 or not match:
        raise RuntimeError(f"login failed: {response.status}")
    return match.group(1)


def throughput(port: int, token: str, rooms: list[int]) -> loadgen.Hammered:
    """Posts as fast as 8 connections can make them (the compiled load client, after 3 s of warm-up)."""
    return loadgen.hammer(port, token, rooms, connections=8, seconds=THROUGHPUT_SECONDS)


class KafkaDelays(threading.Thread):
    """Reads the run's MessageSent topic from its current end and records now minus each event's time."""

    def __init__(self, bootstrap: str, rooms: set[int]) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Consumer, TopicPartition

        from chat_command.events import MessageSent
        from infrastructure import namespace

        self.rooms, self.stop = rooms, threading.Event()
        self.delays_ms: list[float] = []
        self.since = time.time()
        group = f"{namespace.current()}.delays"  # under the namespace, so dropping it ends the group too
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "fetch.wait.max.ms": 1})
        topic = namespace.topic(MessageSent.TOPIC)
        metadata = self.consumer.list_topics(topic, timeout=10)
        assignment = []
        for partition in metadata.topics[topic].partitions:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            assignment.append(TopicPartition(topic, partition, high))
        self.consumer.assign(assignment)

    def run(self) -> None:
        while not self.stop.is_set():
            message = self.consumer.poll(0.05)
            if message is None or message.error():
                continue
            arrived = time.time()
            record = json.loads(message.value() or b"{}")
            committed = datetime.fromisoformat(record["occurredAt"].replace("Z", "+00:00")).timestamp()
            if record["payload"]["roomId"] in self.rooms and committed >= self.since:
                self.delays_ms.append((arrived - committed) * 1000)
        self.consumer.close()


def fixed_rate(port: int, token: str, rooms: list[int], seconds: int) -> tuple[list[float], int]:
    """Open-loop sends at RATE per second; latencies in ms and the count of failures."""
    posts = open_loop_posts(
        port, token, RATE, RATE * seconds, lambda i: {"roomId": rooms[i % len(rooms)], "content": f"rate {i}"}
    )
    return [p.elapsed_ms for p in posts if p.status], sum(p.status != 200 for p in posts)


def main() -> None:
    env = bench_environment(DB_NAME)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    rooms = prepare(env)
    port = free_port()
    try:
        with Processes(env) as processes:
            processes.start(sys.executable, "manage.py", "relay_outbox")
            processes.web(port)
            token = login(port)
            hammered = throughput(port, token, rooms)
            delays = KafkaDelays(env["KAFKA_BOOTSTRAP_SERVERS"], set(rooms))
            delays.start()
            latencies, failures = fixed_rate(port, token, rooms, THROUGHPUT_SECONDS)
            time.sleep(2)
            delays.stop.set()
            delays.join(10)
    finally:
        drop_namespace(env)
    report(
        "command_write",
        [
            Figure("commands/s at 8 connections", hammered.rps, "/s", 1000),
            Figure("  p50 latency at 8 connections", hammered.p50_ms, "ms"),
            Figure("  p99 latency at 8 connections", hammered.p99_ms, "ms"),
            Figure("  failed commands at 8 connections", hammered.non_200, "", 1, higher_is_better=False),
            Figure(f"p50 command latency at {RATE}/s", percentile(latencies, 50), "ms"),
            Figure(f"p99 command latency at {RATE}/s", percentile(latencies, 99), "ms", 25, higher_is_better=False),
            Figure(f"  failed commands at {RATE}/s", failures, "", 1, higher_is_better=False),
            Figure("p50 commit-to-Kafka delay", percentile(delays.delays_ms, 50), "ms"),
            Figure("p99 commit-to-Kafka delay", percentile(delays.delays_ms, 99), "ms", 20, higher_is_better=False),
            Figure("  events read back from Kafka", len(delays.delays_ms), "", len(latencies)),
        ],
    )


if __name__ == "__main__":
    main()

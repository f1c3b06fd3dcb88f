"""The compiled load client: what it reports of posts is what the server answered."""

import subprocess

import pytest

from benchmarks import loadgen
from benchmarks.common import free_port
from benchmarks.tests.conftest import SLOW_ANSWER_S


def test_hammer_counts_every_answered_post_and_its_latency(server_closing_idle_connections):
    result = loadgen.hammer(server_closing_idle_connections, "t", [1, 2], connections=4, seconds=1, warmup=0.2)
    assert result.requests > 10
    assert result.non_200 == 0
    assert 0 < result.p50_ms <= result.p99_ms
    assert abs(result.rps - result.requests) / result.requests < 0.2  # over about one second


def test_posts_go_out_on_their_schedule_and_carry_the_answers_message_id(server_closing_idle_connections):
    posts = loadgen.Posts(server_closing_idle_connections, "t", [7, 8], rate=40, seconds=1, label="test").wait()
    assert len(posts) == 40
    assert {p.room_id for p in posts} == {7, 8}
    assert [(p.status, p.message_id) for p in posts] == [(200, 1)] * 40
    due = sorted(p.due_ns for p in posts)
    assert (due[-1] - due[0]) / 1e9 == pytest.approx(39 / 40, abs=1e-6)  # 40 posts 25 ms apart
    assert all(p.due_ns <= p.sent_ns <= p.done_ns for p in posts)


def test_a_post_that_waited_for_a_busy_connection_is_reported_late(slow_server):
    # One connection, a post due every 50 ms, each answered after 100 ms: they fall behind.
    posts = loadgen.Posts(slow_server, "t", [1], rate=20, seconds=0.5, label="test", connections=1).wait()
    assert len(posts) == 10
    late = sorted(p.late_ms for p in posts)
    assert late[0] < SLOW_ANSWER_S * 1000 / 2  # the first went out on time
    assert late[-1] >= 9 * (SLOW_ANSWER_S * 1000 - 50) * 0.9  # the tenth, about 9 x 50 ms behind


def test_with_cut_nothing_is_sent_after_the_duration(slow_server):
    # As above, but the posts still waiting for the one connection at the end are not made.
    posts = loadgen.Posts(slow_server, "t", [1], rate=20, seconds=0.5, label="test", connections=1, cut=True).wait()
    assert 3 <= len(posts) <= 0.5 / SLOW_ANSWER_S + 1  # about one per answer, not the 10 scheduled
    start = min(p.due_ns for p in posts)
    assert all(p.sent_ns <= start + 0.5e9 for p in posts)
    assert [(p.status, p.message_id) for p in posts] == [(200, 1)] * len(posts)


def test_a_post_nobody_answered_has_status_0_and_no_message():
    posts = loadgen.Posts(free_port(), "t", [1], rate=10, seconds=0.3, label="test").wait()
    assert len(posts) == 3
    assert [(p.status, p.message_id) for p in posts] == [(0, None)] * 3


def test_its_stomp_frame_reading():
    run = subprocess.run(
        ["go", "test", "./..."], cwd=loadgen.SOURCE, env=loadgen.go_environment(), capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr

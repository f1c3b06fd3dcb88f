"""The load generator counts as refused only the posts a server refused."""

import pytest

from benchmarks.common import wait_until
from benchmarks.load import Poster
from benchmarks.tests.conftest import KEEP_ALIVE_S


def test_it_does_not_count_a_keep_alive_connection_the_server_closed_as_a_refused_post(server_closing_idle_connections):
    # One thread posting every 0.5 s: each post after the first finds its connection idle for
    # longer than the server keeps it, as happens to a drill's poster threads whose turns keep
    # them on one of the two web processes for a while.
    poster = Poster([server_closing_idle_connections], token="t", rooms=[1], rate=1 / (5 * KEEP_ALIVE_S), threads=1)
    poster.start()
    assert wait_until(lambda: len(poster.posts) >= 4, timeout=10)
    posts = poster.stop()
    assert [post.status for post in posts] == [200] * len(posts)


def test_a_posting_thread_that_crashed_fails_the_run_instead_of_reading_as_a_slow_server():
    poster = Poster([1], token="t", rooms=[], rate=100, threads=2).start()  # no rooms: every turn crashes
    assert wait_until(lambda: not any(thread.is_alive() for thread in poster._threads), timeout=10)
    with pytest.raises(RuntimeError, match="2 posting threads crashed"):
        poster.stop()

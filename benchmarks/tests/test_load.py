"""The load generator counts as refused only the posts a server refused."""

import asyncio
import json
import threading

import pytest
import uvicorn

from benchmarks.common import free_port, wait_until
from benchmarks.load import Poster

# uvicorn closes a keep-alive connection idle this long (5 s by default, as the drills run it).
KEEP_ALIVE_S = 0.1


async def accept_every_post(scope, receive, send):
    """Answer every request as POST /command/message answers an accepted message."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = json.dumps({"data": {"messageId": 1}}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def server_closing_idle_connections():
    port = free_port()
    config = uvicorn.Config(
        accept_every_post,
        host="127.0.0.1",
        port=port,
        timeout_keep_alive=KEEP_ALIVE_S,
        lifespan="off",
        log_level="error",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    assert wait_until(lambda: server.started, timeout=10)
    yield port
    server.should_exit = True
    thread.join(10)


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

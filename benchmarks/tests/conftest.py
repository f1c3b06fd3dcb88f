"""A stand-in for POST /command/message, for the load clients' own tests."""

import asyncio
import json

import pytest

from infrastructure.testing.threaded_server import serving

# uvicorn closes a keep-alive connection idle this long (5 s by default, as the drills run it).
KEEP_ALIVE_S = 0.1


async def accept_every_post(scope, receive, send):
    """Answer every request as POST /command/message answers an accepted message."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = json.dumps({"data": {"messageId": 1}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


SLOW_ANSWER_S = 0.1


async def accept_every_post_slowly(scope, receive, send):
    """The same, each answer SLOW_ANSWER_S late."""
    await asyncio.sleep(SLOW_ANSWER_S)
    await accept_every_post(scope, receive, send)


@pytest.fixture
def server_closing_idle_connections():
    yield from serve(accept_every_post)


@pytest.fixture
def slow_server():
    yield from serve(accept_every_post_slowly)


def serve(app):
    with serving(app, timeout_keep_alive=KEEP_ALIVE_S) as port:
        yield port

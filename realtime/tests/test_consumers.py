"""The STOMP consumer's cost per frame: a frame that needs no database costs no worker thread, and
none costs a task of its own."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels import consumer as channels_consumer
from channels.generic import websocket as channels_websocket
from django.db import connections

from realtime.tests.stack import token_for
from realtime.tests.test_metrics import Client

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_frames_are_handled_without_a_database_cleanup_in_a_worker_thread_each(seeded, monkeypatch):
    # Channels' own dispatch cleans up database connections in a worker thread before every
    # handler (connect, each frame, disconnect); the session cleans up around its own database
    # calls instead (database_sync_to_async), so a frame that needs none costs no thread.
    cleanups = []

    async def counted() -> None:
        cleanups.append(1)

    # Channels calls it from its dispatch and again from its WebSocket consumers' disconnect handler.
    monkeypatch.setattr(channels_consumer, "aclose_old_connections", counted)
    monkeypatch.setattr(channels_websocket, "aclose_old_connections", counted)

    asyncio.run(a_session())
    assert cleanups == []


def test_frames_are_received_without_a_task_and_an_asyncio_wait_each(seeded, monkeypatch):
    # Channels' consumer loop waits on the client and a channel-layer channel at once, with a
    # new task and an asyncio.wait per message; the STOMP consumer has no channel of its own.
    loops = []
    channels_loop = channels_consumer.await_many_dispatch

    async def counted(*args, **kwargs):
        loops.append(1)
        return await channels_loop(*args, **kwargs)

    monkeypatch.setattr(channels_consumer, "await_many_dispatch", counted)

    asyncio.run(a_session())
    assert loops == []


async def a_session() -> None:
    """Connect, subscribe ten times with receipts, close."""
    client = Client()
    assert await client.connect()
    await client.send("CONNECT", accept_version="1.2", jwt_token=token_for(1))
    assert (await client.receive()).command == "CONNECTED"
    for n in range(10):
        await client.send("SUBSCRIBE", destination="/user/topic/rooms", id=f"rooms-{n}", receipt=f"r{n}")
        assert (await client.receive()).command == "RECEIPT"
    await client.disconnect()
    await sync_to_async(connections.close_all)()

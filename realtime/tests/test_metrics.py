"""WebSocket metrics: open connections, subscriptions and STOMP frames in and out."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from prometheus_client import REGISTRY

from realtime.consumers import StompConsumer
from realtime.hub import hub, user_group
from realtime.pusher import frame
from realtime.stomp import Frame, FrameParser, encode
from realtime.tests.stack import token_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
CEILING_S = 30  # what a wait may take before the test fails; far above what it takes


def sample(name: str, **labels: str) -> float:
    """What /metrics shows for this process (outside multiprocess mode it serves this registry)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    return {
        "connections": sample("chat_websocket_connections"),
        "subscriptions": sample("chat_stomp_subscriptions"),
        "in CONNECT": sample("chat_stomp_frames_received_total", command="CONNECT"),
        "in SUBSCRIBE": sample("chat_stomp_frames_received_total", command="SUBSCRIBE"),
        "in BEGIN": sample("chat_stomp_frames_received_total", command="BEGIN"),
        "out CONNECTED": sample("chat_stomp_frames_sent_total", command="CONNECTED"),
        "out RECEIPT": sample("chat_stomp_frames_sent_total", command="RECEIPT"),
        "out MESSAGE": sample("chat_stomp_frames_sent_total", command="MESSAGE"),
        "out ERROR": sample("chat_stomp_frames_sent_total", command="ERROR"),
    }


def change(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in before if after[name] != before[name]}


class Client:
    def __init__(self) -> None:
        self.ws = WebsocketCommunicator(StompConsumer.as_asgi(), "/ws/chat")
        self.parser = FrameParser()

    async def connect(self) -> bool:
        connected, _ = await self.ws.connect(timeout=CEILING_S)
        return connected

    async def disconnect(self) -> None:
        """Close, and return once the consumer has ended (the communicator cancels it after 1 s)."""
        await self.ws.disconnect(timeout=CEILING_S)

    async def send(self, command: str, body: bytes = b"", **headers: str) -> None:
        named = tuple((k if k == "jwt_token" else k.replace("_", "-"), v) for k, v in headers.items())
        await self.ws.send_to(text_data=encode(Frame(command, named, body)).decode())

    async def receive(self) -> Frame:
        while True:
            for parsed in self.parser.feed(await self.ws.receive_from(timeout=CEILING_S)):
                if parsed is not None:
                    return parsed


def test_connections_subscriptions_and_frames_are_counted_and_released_on_close(seeded):
    async def session() -> tuple[dict[str, float], dict[str, float]]:
        client = Client()
        assert await client.connect()
        await client.send("CONNECT", accept_version="1.2", jwt_token=token_for(1))
        assert (await client.receive()).command == "CONNECTED"
        await client.send("SUBSCRIBE", destination="/user/topic/rooms", id="rooms", receipt="r1")
        assert (await client.receive()).command == "RECEIPT"
        await (await hub()).publish(user_group(1, "rooms"), frame({"roomId": 1}))
        assert (await client.receive()).command == "MESSAGE"
        await client.send("BEGIN", transaction="t1")
        assert (await client.receive()).command == "ERROR"
        during = snapshot()
        await client.disconnect()
        # The database work of presence ran in asgiref's thread; close its connection there.
        await sync_to_async(connections.close_all)()
        return during, snapshot()

    before = snapshot()
    during, after = asyncio.run(session())
    assert change(before, during) == {
        "connections": 1,
        "subscriptions": 1,
        "in CONNECT": 1,
        "in SUBSCRIBE": 1,
        "in BEGIN": 1,
        "out CONNECTED": 1,
        "out RECEIPT": 1,
        "out MESSAGE": 1,
        "out ERROR": 1,
    }
    assert after["connections"] == before["connections"], "a closed connection is no longer open"
    assert after["subscriptions"] == before["subscriptions"], "its subscriptions went with it"

"""The pusher role: events from the bus to the STOMP destinations of the reference."""

from __future__ import annotations

import json
import threading
from typing import Any

from chat_command.events import MessageSent, MessageUpdated, ReadMarkerUpdated
from chat_query.events import ReadStatusUpdated, RoomUpdated
from chat_query.selectors import state_json
from infrastructure import backends
from infrastructure.messaging.events import Envelope, Event
from realtime.hub import push_many_from_sync, room_group, user_group


def frame(body: dict[str, Any], message_id: int | None = None) -> dict[str, Any]:
    """A push: the JSON body of a MESSAGE frame (each subscription adds its own headers)."""
    push: dict[str, Any] = {"body": json.dumps(body, ensure_ascii=False)}
    if message_id is not None:
        push["messageId"] = message_id
    return push


def pushes_for(event: Event) -> list[tuple[str, dict[str, Any]]]:
    """(group, push) pairs for one event; payloads keep the reference's field names."""
    if isinstance(event, MessageSent):
        return [(room_group(event.roomId, "message"), frame(event.payload(), event.messageId))]
    if isinstance(event, MessageUpdated):
        body = {"type": event.change, "message": state_json(event.fields())}
        return [(room_group(event.roomId, "message-updates"), frame(body))]
    if isinstance(event, ReadMarkerUpdated):
        return [(room_group(event.roomId, "readMarkers"), frame(event.payload()))]
    if isinstance(event, RoomUpdated):
        push = frame(event.payload())
        return [(user_group(p, "rooms"), push) for p in event.participantIds]
    if isinstance(event, ReadStatusUpdated):
        return [(user_group(event.customerId, "readStatus"), frame(event.payload()))]
    return []


class Pusher:
    name: str = "pusher"
    topics: tuple[str, ...] = (
        MessageSent.TOPIC,
        MessageUpdated.TOPIC,
        ReadMarkerUpdated.TOPIC,
        RoomUpdated.TOPIC,
        ReadStatusUpdated.TOPIC,
    )
    batch_size: int = 500

    def handle(self, envelopes: list[Envelope]) -> list[Event]:
        push_many_from_sync([item for envelope in envelopes for item in pushes_for(envelope.event())])
        return []

    def done(self, envelopes: list[Envelope]) -> None:
        pass

    def healthy(self) -> bool:
        try:
            backends.redis_client().ping()
        except Exception:  # noqa: BLE001 - any failure means the channel layer is unreachable
            return False
        return True


def embedded_pusher(stop: threading.Event) -> None:
    """In the embedded mode: take events from the in-process bus."""
    from infrastructure.messaging import bus, consumers

    consumers.subscribe_embedded(Pusher())
    try:
        stop.wait()
    finally:
        bus.unsubscribe(Pusher.name)

"""The pusher role: events from the bus to the STOMP destinations of the reference."""

from __future__ import annotations

import json
import threading
from typing import Any

from chat_command.events import LEFT, REMOVED, MessageSent, MessageUpdated, ReadMarkerUpdated, RoomChanged
from chat_query.events import ReadStatusUpdated, RoomRemoved, RoomUpdated
from chat_query.selectors import state_json
from infrastructure import backends
from infrastructure.messaging.events import Envelope, Event
from realtime.hub import ACCESS_GROUP, ROOM_TOPICS, push_many_from_sync, room_group, sessions_group, user_group


def frame(body: dict[str, Any], message_id: int | None = None) -> dict[str, Any]:
    """A push: the JSON body of a MESSAGE frame (each subscription adds its own headers)."""
    push: dict[str, Any] = {"body": json.dumps(body, ensure_ascii=False)}
    if message_id is not None:
        push["messageId"] = message_id
    return push


def without_seq(event: MessageSent | ReadMarkerUpdated) -> dict[str, Any]:
    """The payload but its seq: that is the read model's (unread counts), and pushes keep the
    reference's fields (plus a system message's type and facts)."""
    return {name: value for name, value in event.payload().items() if name != "seq"}


def pushes_for(event: Event) -> list[tuple[str, dict[str, Any]]]:
    """(group, push) pairs for one event; payloads keep the reference's field names."""
    if isinstance(event, MessageSent):
        return [(room_group(event.roomId, "message"), frame(without_seq(event), event.messageId))]
    if isinstance(event, MessageUpdated):
        body = {"type": event.change, "message": state_json(event.fields())}
        return [(room_group(event.roomId, "message-updates"), frame(body))]
    if isinstance(event, ReadMarkerUpdated):
        return [(room_group(event.roomId, "readMarkers"), frame(without_seq(event)))]
    if isinstance(event, RoomUpdated):
        push = frame(event.payload())
        return [(user_group(p, "rooms"), push) for p in event.participantIds]
    if isinstance(event, ReadStatusUpdated):
        return [(user_group(event.customerId, "readStatus"), frame(event.payload()))]
    if isinstance(event, RoomChanged) and event.change in (REMOVED, LEFT):
        return revocations(event.roomId, event.customerIds)
    if isinstance(event, RoomRemoved):
        push = frame({"roomId": event.roomId})
        return [(user_group(c, "rooms-removed"), push) for c in event.customerIds]
    # RoomChanged adding people or renaming: the projector's RoomUpdated announces it.
    return []


def revocations(room_id: int, customer_ids: list[int]) -> list[tuple[str, dict[str, Any]]]:
    """End the customers' access to the room: every web process forgets their membership, then
    each of their sessions ends its subscriptions to the room's topics. Published with the
    room's messages, in their order, so no message committed after the removal follows.

    The removal also goes down each of the room's own groups: Redis keeps the order of one
    channel, and on a Redis Cluster the sessions' and the room's channels live on different
    shards, so only the room's channel holds it before the room's next message everywhere.
    """
    forget = (ACCESS_GROUP, {"roomId": room_id, "customerIds": customer_ids})
    in_order = {"kind": "revoke", "roomId": room_id, "customerIds": customer_ids}
    return [
        forget,
        *((room_group(room_id, topic), in_order) for topic in ROOM_TOPICS),
        *((sessions_group(c), {"kind": "revoke", "roomId": room_id}) for c in customer_ids),
    ]


class Pusher:
    name: str = "pusher"
    # RoomChanged travels on MessageSent.TOPIC, RoomRemoved on RoomUpdated.TOPIC.
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

"""A revocation that races a SUBSCRIBE or a replay, in one web process (its hub on Redis, PostgreSQL).

Each test removes the member at the moment the race needs, in the thread that answers the
session's database question, and publishes what the pusher publishes for the removal.
"""

import asyncio
import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from chat_command.selectors import is_participant
from chat_command.services import NewMessage, NewRoom, do_create_room, do_remove_participant, do_send_message
from realtime import membership, session
from realtime.hub import hub, push_many_from_sync, room_group
from realtime.pusher import frame, revocations
from realtime.recovery import messages_after
from realtime.stomp import Frame
from realtime.tests.stack import token_for
from realtime.tests.test_metrics import CEILING_S, Client

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class Session(Client):
    """Keeps the frames that came in one WebSocket message together."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: deque[Frame] = deque()

    async def receive(self) -> Frame:
        while not self.pending:
            text = await self.ws.receive_from(timeout=CEILING_S)
            self.pending.extend(f for f in self.parser.feed(text) if f is not None)
        return self.pending.popleft()


class Removal:
    """Removes customer 2 from the room and returns once this process has dispatched the revocation."""

    def __init__(self, room_id: int) -> None:
        self.room_id = room_id
        self.barrier = f"test.barrier.{uuid.uuid4().hex}"
        self.heard = threading.Event()

    async def listen(self) -> None:
        await (await hub()).join(self.barrier, lambda push: self.heard.set())

    def now(self) -> None:
        do_remove_participant(1, self.room_id, 2)
        # The hub dispatches a process's pushes in publish order: once the barrier is heard,
        # the revocations before it were dispatched.
        push_many_from_sync([*revocations(self.room_id, [2]), (self.barrier, {"kind": "barrier"})])
        assert self.heard.wait(CEILING_S), "the revocation reached this process"


def run(scenario: Callable[[Session], Any]) -> Any:
    async def connected() -> Any:
        client = Session()
        assert await client.connect()
        await client.send("CONNECT", accept_version="1.2", jwt_token=token_for(2))
        assert (await client.receive()).command == "CONNECTED"
        try:
            return await scenario(client)
        finally:
            await client.disconnect()
            # CONNECT checked the token in the loop's executor (its one idle thread): close there too.
            await sync_to_async(connections.close_all, thread_sensitive=False)()
            await sync_to_async(connections.close_all)()

    return asyncio.run(connected())


def test_a_subscribe_whose_membership_check_raced_the_removal_does_not_survive_it(seeded, monkeypatch):
    room = do_create_room(1, NewRoom("Check", [2])).room_id
    removal = Removal(room)

    def answered_before_the_removal(room_id: int, customer_id: int) -> bool:
        try:
            member = is_participant(room_id, customer_id)
            removal.now()
            return member
        finally:
            connections.close_all()  # this worker thread's: the test database is dropped at the end

    async def scenario(client: Session) -> tuple[Frame, Frame, bool]:
        await removal.listen()
        monkeypatch.setattr(membership, "is_participant", answered_before_the_removal)
        destination = f"/topic/message/roomId/{room}"
        await client.send("SUBSCRIBE", destination=destination, id="m", receipt="r1")
        refused = await client.receive()
        await client.send("SUBSCRIBE", destination="/user/topic/readStatus", id="s", receipt="r2")
        after = await client.receive()
        return refused, after, bool((await hub()).groups.get(room_group(room, "message")))

    refused, after, joined = run(scenario)
    assert (refused.command, refused.header("receipt-id")) == ("ERROR", "r1")
    assert refused.header("message") == f"Forbidden destination /topic/message/roomId/{room}"
    assert after.header("receipt-id") == "r2", "nothing else came in between"
    assert not joined, "no subscription to the room is left in the hub"


def test_a_removal_during_a_replay_ends_the_subscription_after_what_preceded_it(seeded, monkeypatch):
    room = do_create_room(1, NewRoom("Replay", [2])).room_id
    missed = do_send_message(1, NewMessage(room, "missed before the removal", None)).message_id
    removal = Removal(room)

    def replayed_then_removed(room_id: int, since: int, reader_id: int) -> list[dict[str, Any]] | None:
        try:
            replay = messages_after(room_id, since, reader_id)
            removal.now()
            return replay
        finally:
            connections.close_all()

    async def scenario(client: Session) -> tuple[list[Frame], bool]:
        await removal.listen()
        monkeypatch.setattr(session, "messages_after", replayed_then_removed)
        destination = f"/topic/message/roomId/{room}"
        await client.send("SUBSCRIBE", destination=destination, id="m", receipt="r1", since_message_id="0")
        frames = [await client.receive() for _ in range(3)]
        return frames, bool((await hub()).groups.get(room_group(room, "message")))

    frames, joined = run(scenario)
    assert [f.command for f in frames] == ["MESSAGE", "ERROR", "RECEIPT"]
    assert f'"messageId": {missed}' in frames[0].body.decode()
    assert frames[1].header("subscription") == "m"
    assert frames[1].header("message") == f"Customer 2 is no longer a participant of Room {room}"
    assert not joined, "no subscription to the room is left in the hub"


def test_a_removal_heard_first_on_the_rooms_own_feed_ends_the_subscription_before_the_next_message(seeded):
    # On a Redis Cluster the sessions' and the access group's channels live on other shards than
    # the room's: only the room's own channel keeps the removal before the room's next message.
    room = do_create_room(1, NewRoom("Shards", [2])).room_id

    def removed_then_a_message() -> None:
        do_remove_participant(1, room, 2)
        after = do_send_message(1, NewMessage(room, "after the removal", None)).message_id
        in_the_rooms_feed = [(g, push) for g, push in revocations(room, [2]) if g.startswith(f"room.{room}.")]
        push_many_from_sync([*in_the_rooms_feed, (room_group(room, "message"), frame({"messageId": after}, after))])
        connections.close_all()

    async def scenario(client: Session) -> list[Frame]:
        await client.send("SUBSCRIBE", destination=f"/topic/message/roomId/{room}", id="m", receipt="r1")
        assert (await client.receive()).header("receipt-id") == "r1"
        await sync_to_async(removed_then_a_message, thread_sensitive=False)()
        ended = await client.receive()
        await client.send("SUBSCRIBE", destination="/user/topic/readStatus", id="s", receipt="r2")
        return [ended, await client.receive()]

    ended, barrier = run(scenario)
    assert (ended.command, ended.header("subscription")) == ("ERROR", "m")
    assert barrier.header("receipt-id") == "r2", "the message after the removal never came"

"""A STOMP session that meets a failing backend ends cleanly, and PostgreSQL restarts are survived."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connection, connections

from realtime import membership
from realtime.hub import hub, sessions_group, user_group
from realtime.tests.stack import token_for
from realtime.tests.test_metrics import CEILING_S, Client, change, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_database_failure_in_a_session_ends_it_with_an_error_and_releases_everything(seeded, monkeypatch):
    def postgresql_is_away(room_id: int, customer_id: int) -> bool:
        raise OperationalError("connection to server was lost")

    async def session() -> tuple[dict[str, float], tuple[int, list[str]], str]:
        client = Client()
        assert await client.connect()
        await client.send("CONNECT", accept_version="1.2", jwt_token=token_for(1))
        assert (await client.receive()).command == "CONNECTED"
        await client.send("SUBSCRIBE", destination="/user/topic/rooms", id="rooms", receipt="r1")
        assert (await client.receive()).command == "RECEIPT"
        monkeypatch.setattr(membership, "is_participant", postgresql_is_away)
        await client.send("SUBSCRIBE", destination="/topic/message/roomId/987654", id="room")
        error = await client.receive()
        closed = await client.ws.receive_output(timeout=CEILING_S)
        await client.disconnect()  # as the server confirms a close the application asked for
        the_hub = await hub()
        left_behind = [g for g in (user_group(1, "rooms"), sessions_group(1)) if the_hub.groups.get(g)]
        await sync_to_async(connections.close_all)()
        return snapshot(), (closed.get("code"), left_behind), error.header("message") or ""

    before = snapshot()
    after, (close_code, left_behind), message = asyncio.run(session())
    assert message.startswith("A backend is unavailable"), message
    assert close_code == 1011, "the client is told the server failed, and reconnects"
    assert left_behind == [], "the hub no longer delivers to the ended session"
    assert {k: v for k, v in change(before, after).items() if k in ("connections", "subscriptions")} == {}


def test_a_membership_check_works_again_right_after_postgresql_drops_its_connection(seeded):
    """What a PostgreSQL restart does to every connection a web process holds."""

    def backend_pid() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return int(cursor.fetchone()[0])

    async def scenario() -> bool:
        assert not await membership.is_member(987654, 1)  # opens the connection the checks share
        pid = await sync_to_async(backend_pid)()  # the same thread as the membership checks
        await sync_to_async(terminate, thread_sensitive=False)(pid)
        try:
            return await membership.is_member(987654, 1) is False
        finally:
            await sync_to_async(connections.close_all)()

    def terminate(pid: int) -> None:
        # With a timeout it returns once the backend has exited, not when it was signalled: a
        # check that ran in between would still find the connection alive.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])
            assert cursor.fetchone()[0], "the backend exited within 10 s"
        connection.close()

    assert asyncio.run(scenario()), "the check answered from a new connection"

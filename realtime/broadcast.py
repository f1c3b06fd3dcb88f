"""Presence and typing changes, announced to the rooms concerned (once, on any process)."""

from __future__ import annotations

import asyncio
import json
import logging

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from accounts.tokens import Principal, verify_token
from chat_command.selectors import room_ids_of
from realtime import presence, typing_indicator
from realtime.hub import hub, room_group

logger = logging.getLogger(__name__)

SWEEP_EVERY_S = 0.5

_sweepers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


def ensure_sweeper() -> None:
    loop = asyncio.get_running_loop()
    if loop not in _sweepers or _sweepers[loop].done():
        _sweepers[loop] = loop.create_task(sweep_forever())


async def _announce_presence(customer_id: int, online: bool) -> None:
    rooms = await database_sync_to_async(room_ids_of)(customer_id)
    body = json.dumps({"customerId": customer_id, "online": online})
    the_hub = await hub()
    for room_id in rooms:
        await the_hub.publish(room_group(room_id, "onlineStatus"), {"body": body})


async def connection_opened(token: str, connection_id: str) -> Principal:
    """A STOMP CONNECT's token verified and the connection's presence recorded, in one call on a
    worker thread (PostgreSQL holds the revoked tokens, Redis the presence); raises InvalidToken.
    database_sync_to_async replaces a database connection that went bad before the call."""

    def verify_and_touch() -> tuple[Principal, bool]:
        principal = verify_token(token)
        return principal, presence.touch(principal.customer_id, connection_id)

    principal, came_online = await database_sync_to_async(verify_and_touch, thread_sensitive=False)()
    if came_online:
        await _announce_presence(principal.customer_id, True)
    return principal


async def presence_touched(customer_id: int, connection_id: str) -> None:
    if await sync_to_async(presence.touch, thread_sensitive=False)(customer_id, connection_id):
        await _announce_presence(customer_id, True)


async def presence_left(customer_id: int, connection_id: str) -> None:
    if await sync_to_async(presence.leave, thread_sensitive=False)(customer_id, connection_id):
        await _announce_presence(customer_id, False)


async def typing_changed(room_id: int, customer_id: int, typing_now: bool) -> None:
    change = typing_indicator.start if typing_now else typing_indicator.stop
    if await sync_to_async(change, thread_sensitive=False)(room_id, customer_id):
        await _announce_typing(room_id, customer_id, typing_now)


async def _announce_typing(room_id: int, customer_id: int, typing_now: bool) -> None:
    body = json.dumps({"roomId": room_id, "typing": typing_now, "customerId": customer_id})
    await (await hub()).publish(room_group(room_id, "typing"), {"body": body})


async def sweep_forever() -> None:
    """Expire presence and typing; each web process sweeps, Redis decides who announces."""
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        try:
            for customer_id in await sync_to_async(presence.sweep, thread_sensitive=False)():
                await _announce_presence(customer_id, False)
            for room_id, customer_id in await sync_to_async(typing_indicator.sweep, thread_sensitive=False)():
                await _announce_typing(room_id, customer_id, False)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("sweeping presence and typing failed; trying again")

"""Presence and typing changes, announced to the rooms concerned (once, on any process)."""

from __future__ import annotations

import asyncio
import json
import logging

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from accounts.tokens import Principal, verify_tokens
from chat_command.selectors import room_ids_of
from realtime import presence, typing_indicator
from realtime.batching import Batched
from realtime.hub import hub, room_group

logger = logging.getLogger(__name__)

SWEEP_EVERY_S = 0.5
# Connections opened or closed in one batch at most: a bounded statement (four parameters
# each) and pipeline.
MAX_BATCH = 500

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
    """A STOMP CONNECT's token verified and the connection's presence recorded (PostgreSQL holds
    the revoked tokens, Redis the presence); raises InvalidToken. CONNECTs that arrive together
    are verified together: one worker-thread call, one PostgreSQL statement and one Redis round
    trip for a batch, so a thousand clients connecting at once cost a few dozen of each."""
    principal, came_online = await _opening((token, connection_id))
    if came_online:
        await _announce_presence(principal.customer_id, True)
    return principal


def _verify_and_touch(connections: list[tuple[str, str]]) -> list[tuple[Principal, bool] | Exception]:
    """Each (token, connection)'s principal and whether its customer just came online, or why
    its token is refused; only verified connections are recorded as present."""
    verified = verify_tokens([token for token, _ in connections])
    present = {n: p for n, p in enumerate(verified) if isinstance(p, Principal)}
    online = presence.touch_all([(p.customer_id, connections[n][1]) for n, p in present.items()])
    came_online = dict(zip(present, online, strict=True))
    return [(p, came_online[n]) if isinstance(p, Principal) else p for n, p in enumerate(verified)]


# database_sync_to_async replaces a database connection that went bad before the call. The
# work is looked up at each call, so a test can wrap it.
_opening: Batched[tuple[str, str], tuple[Principal, bool]] = Batched(
    lambda connections: _verify_and_touch(connections),
    lambda work: database_sync_to_async(work, thread_sensitive=False),
    MAX_BATCH,
)
_leaving: Batched[tuple[int, str], bool] = Batched(
    lambda connections: presence.leave_all(connections),
    lambda work: sync_to_async(work, thread_sensitive=False),
    MAX_BATCH,
)


async def presence_touched(customer_id: int, connection_id: str) -> None:
    if await sync_to_async(presence.touch, thread_sensitive=False)(customer_id, connection_id):
        await _announce_presence(customer_id, True)


async def presence_left(customer_id: int, connection_id: str) -> None:
    """A connection gone; connections that close together are forgotten in one batch."""
    if await _leaving((customer_id, connection_id)):
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

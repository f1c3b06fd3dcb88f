"""Calls that arrive together, done together: one worker-thread call for a batch of them."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from realtime.hub import spawn

Item = TypeVar("Item")
Result = TypeVar("Result")
# Runs a blocking function in a worker thread: sync_to_async, database_sync_to_async.
Hop = Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]


class Batched(Generic[Item, Result]):
    """Calls of `work` from an event loop, batched: those that arrive while a batch is in its
    worker thread wait and go together in the next one, at most `limit` at a time; a lone call
    goes at once. `work` gets a batch's items and answers each in order with its result or the
    exception its caller gets; an exception `work` raises goes to every caller of the batch."""

    def __init__(self, work: Callable[[list[Item]], Sequence[Result | Exception]], hop: Hop, limit: int) -> None:
        self.work, self.hop, self.limit = work, hop, limit
        # One queue per event loop, forgotten with it.
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue[Item, Result]] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        queue = self._loops.get(loop)
        if queue is None:
            queue = self._loops[loop] = _Queue()
        future: asyncio.Future[Result] = loop.create_future()
        queue.waiting.append((item, future))
        if not queue.busy:
            queue.busy = True
            spawn(self._drain(queue), queue.background)
        return await future

    async def _drain(self, queue: _Queue[Item, Result]) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while queue.waiting:
                batch, queue.waiting = queue.waiting[: self.limit], queue.waiting[self.limit :]
                try:
                    outcomes = await self.hop(self.work)([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - each caller of the batch fails with it
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its caller went away meanwhile
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            queue.busy = False
            # Cancelled half-way: nobody waits forever (cancelling an answered future does nothing).
            for _, future in batch + queue.waiting:
                future.cancel()
            queue.waiting = []


class _Queue(Generic[Item, Result]):
    """One event loop's calls of a Batched: those waiting, and whether a batch is under way."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self.busy = False
        self.background: set[asyncio.Future[None]] = set()

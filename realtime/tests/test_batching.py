"""Batched calls: those that arrive together share one call of the work, each gets its own answer."""

import asyncio

import pytest

from realtime.batching import Batched


class Refused(Exception):
    pass


def run_soon(work):
    """A hop that runs the work on the event loop, after a turn of it (as a thread would, later)."""

    async def call(items):
        await asyncio.sleep(0)
        return work(items)

    return call


def doubling(batches: list[list[int]]):
    def work(items: list[int]):
        batches.append(items)
        return [Refused(item) if item < 0 else item * 2 for item in items]

    return work


def test_calls_that_arrive_together_go_in_one_batch_and_each_gets_its_own_answer():
    batches: list[list[int]] = []
    doubled = Batched(doubling(batches), run_soon, limit=100)

    async def together():
        return await asyncio.gather(*(doubled(n) for n in (1, -2, 3)), return_exceptions=True)

    one, refused, three = asyncio.run(together())

    assert batches == [[1, -2, 3]]
    assert (one, three) == (2, 6)
    assert isinstance(refused, Refused)


def test_a_batch_is_bounded_and_the_rest_go_in_the_next_ones():
    batches: list[list[int]] = []
    doubled = Batched(doubling(batches), run_soon, limit=2)

    async def together():
        return await asyncio.gather(*(doubled(n) for n in range(5)))

    assert asyncio.run(together()) == [0, 2, 4, 6, 8]
    assert batches == [[0, 1], [2, 3], [4]]


def test_a_call_that_arrives_while_a_batch_is_under_way_goes_in_the_next_one():
    batches: list[list[int]] = []
    doubled = Batched(doubling(batches), run_soon, limit=100)

    async def one_then_two():
        first = asyncio.ensure_future(doubled(1))
        await asyncio.sleep(0)  # its batch is under way
        later = await asyncio.gather(doubled(2), doubled(3))
        return [await first, *later]

    assert asyncio.run(one_then_two()) == [2, 4, 6]
    assert batches == [[1], [2, 3]]


def test_what_the_work_raises_goes_to_every_caller_of_its_batch_and_the_next_batch_goes_on():
    calls = []

    def failing_once(items: list[int]):
        calls.append(items)
        if len(calls) == 1:
            raise Refused("the store is away")
        return items

    echoed = Batched(failing_once, run_soon, limit=100)

    async def scenario():
        failed = await asyncio.gather(echoed(1), echoed(2), return_exceptions=True)
        return failed, await echoed(3)

    failed, later = asyncio.run(scenario())
    assert [str(f) for f in failed] == ["the store is away", "the store is away"]
    assert later == 3


def test_a_caller_that_went_away_keeps_nobody_else_from_an_answer():
    batches: list[list[int]] = []
    doubled = Batched(doubling(batches), run_soon, limit=100)

    async def one_gives_up():
        leaving = asyncio.ensure_future(doubled(1))
        staying = asyncio.ensure_future(doubled(2))
        await asyncio.sleep(0)
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return await staying

    assert asyncio.run(one_gives_up()) == 4
    assert batches == [[1, 2]]

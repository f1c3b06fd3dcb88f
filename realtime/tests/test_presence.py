"""Presence and typing as Redis decides them, on one Redis and on a Redis Cluster alike."""

import asyncio
import time

import pytest
from django.db import connections
from django.test import override_settings

from accounts.tokens import InvalidToken, issue_token
from infrastructure import backends, namespace
from realtime import broadcast, presence, typing_indicator

pytestmark = pytest.mark.integration

# More customers and rooms than there are buckets, so every bucket holds some.
SPREAD = 40


@pytest.fixture
def own_namespace(each_redis, unique):
    """A namespace of this test's own: its sweeps expire nobody else's presence or typing."""
    space = f"presence-test-{unique}"
    # Not the settings fixture: it would restore after each_redis has, and undo that.
    with override_settings(CHAT_NAMESPACE=space):
        yield space
    namespace.drop(space)


def ids(unique: str, count: int) -> list[int]:
    first = 900_000_000 + int(unique[:6], 16)
    return list(range(first, first + count))


def test_a_user_is_online_from_their_first_connection_until_their_last_one_leaves(own_namespace, unique):
    [customer] = ids(unique, 1)
    assert presence.touch(customer, "tab-a"), "the first connection brings them online"
    assert not presence.touch(customer, "tab-b")
    assert not presence.touch(customer, "tab-a"), "a renewal is no new arrival"
    assert presence.online_ids([customer, customer + 1]) == {customer}
    assert not presence.leave(customer, "tab-a"), "tab-b is still open"
    assert presence.leave(customer, "tab-b")
    assert presence.online_ids([customer]) == set()
    assert not presence.leave(customer, "tab-b"), "going offline is reported once"


def test_the_sweep_takes_offline_each_user_whose_connections_all_expired_once(own_namespace, unique):
    customers = ids(unique, SPREAD)
    now = time.time()
    for customer in customers:
        presence.touch(customer, "tab", now=now)
    renewed = customers[7]
    presence.touch(renewed, "tab", now=now + presence.ONLINE_TTL_S - 1)
    later = now + presence.ONLINE_TTL_S + 1
    assert sorted(presence.sweep(now=later)) == [c for c in customers if c != renewed]
    assert presence.sweep(now=later) == []
    assert presence.online_ids(customers, now=later) == {renewed}


def test_typing_starts_once_and_stops_once(own_namespace, unique):
    [room, customer] = ids(unique, 2)
    assert typing_indicator.start(room, customer)
    assert not typing_indicator.start(room, customer), "still typing"
    assert typing_indicator.start(room, customer + 1), "someone else starts on their own"
    assert typing_indicator.stop(room, customer)
    assert not typing_indicator.stop(room, customer)


def test_the_sweep_stops_each_typing_past_its_deadline_once(own_namespace, unique):
    rooms = ids(unique, SPREAD)
    customer = 5
    now = time.time()
    for room in rooms:
        typing_indicator.start(room, customer, now=now)
    kept = rooms[3]
    typing_indicator.start(kept, customer, now=now + 1)
    later = now + typing_indicator.TYPING_TTL_S + 0.5
    assert sorted(typing_indicator.sweep(now=later)) == [(r, customer) for r in rooms if r != kept]
    assert typing_indicator.sweep(now=later) == []
    assert not typing_indicator.start(kept, customer, now=later), "the kept one still types"


def test_touch_all_answers_as_touch_would_for_each_connection_in_order(own_namespace, unique):
    first, second = ids(unique, 2)
    presence.touch(second, "tab-a")

    assert presence.touch_all([(first, "tab-a"), (first, "tab-b"), (second, "tab-b")]) == [True, False, False]
    assert presence.online_ids([first, second]) == {first, second}
    assert presence.touch_all([]) == []


def counting(monkeypatch, module, name: str) -> list[int]:
    """Wrap module.name (a function of a batch) to note each batch's size."""
    batches: list[int] = []
    work = getattr(module, name)

    def counted(items):
        batches.append(len(items))
        return work(items)

    monkeypatch.setattr(module, name, counted)
    return batches


@pytest.mark.django_db(transaction=True)
def test_connects_that_arrive_together_are_verified_and_recorded_in_one_batch(
    own_namespace, unique, seeded, monkeypatch
):
    """One worker-thread call for all of them: one statement, one Redis round trip."""
    batches = counting(monkeypatch, broadcast, "_verify_and_touch")
    tokens = [issue_token(customer_id=c, username=f"user{c}", full_name="", roles="") for c in (1, 2, 1)]
    presence.touch(2, "already-open")

    async def connect_together():
        return await asyncio.gather(
            *(broadcast._opening((token, f"{unique}-{n}")) for n, token in enumerate([*tokens, "not a token"])),
            return_exceptions=True,
        )

    *opened, refused = asyncio.run(connect_together())

    assert batches == [4]
    assert [(principal.customer_id, came_online) for principal, came_online in opened] == [
        (1, True),
        (2, False),
        (1, False),
    ]
    assert isinstance(refused, InvalidToken)
    assert presence.online_ids([1, 2]) == {1, 2}
    connections.close_all()


def test_connections_that_close_together_are_forgotten_in_one_batch(own_namespace, unique, monkeypatch):
    first, second = ids(unique, 2)
    presence.touch_all([(first, "tab-a"), (first, "tab-b"), (second, "tab-a")])
    batches = counting(monkeypatch, presence, "leave_all")

    async def close_together():
        closing = [(first, "tab-a"), (first, "tab-b"), (second, "tab-a")]
        return await asyncio.gather(*(broadcast._leaving(connection) for connection in closing))

    assert asyncio.run(close_together()) == [False, True, True], "each customer goes offline once"
    assert batches == [3]
    assert presence.online_ids([first, second]) == set()


def test_touch_all_loads_its_script_again_on_a_server_that_forgot_it(own_namespace, unique):
    first, second = ids(unique, 2)
    backends.redis_client().script_flush()  # as a restarted server would have

    assert presence.touch_all([(first, "tab"), (second, "tab")]) == [True, True]
    assert presence.online_ids([first, second]) == {first, second}

"""Presence and typing as Redis decides them, on one Redis and on a Redis Cluster alike."""

import time

import pytest
from django.test import override_settings

from infrastructure import namespace
from realtime import presence, typing_indicator

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

"""The read cache against the real Redis, read store and PostgreSQL: what it serves, and when it may not."""

import json

import pytest
import redis

from benchmarks.common import free_port
from chat_command.services import NewRoom, ReadMarker, do_create_room, do_mark_read
from chat_query import cache
from chat_query.projection import cache_entry
from chat_query.projector import Projector
from chat_query.store import active_store
from chat_query.tests.helpers import body, marker, message, project, room_created, send
from infrastructure import backends
from infrastructure.messaging.events import Envelope
from infrastructure.testing.waiting import wait_for

pytestmark = pytest.mark.integration


def data(response):
    return body(response)["data"]


@pytest.fixture
def unreachable_redis(monkeypatch):
    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=None)
    monkeypatch.setattr(backends, "redis_client", lambda: client)


def unedited(ids):
    return [(i, 0) for i in ids]


def test_a_page_read_from_the_read_store_is_cached_under_its_message_ids_and_revisions(user1, room, redis_url):
    page = unedited(send(room, 1, 3)[::-1])
    project()
    first = data(user1.get(f"/query/message/roomId/{room.room_id}"))
    generation = active_store().generation
    assert [json.loads(m) for m in cache.page(generation, room.room_id, page)] == first
    # What the cache holds under those ids is what is served.
    cache.put_page(generation, room.room_id, page, [json.dumps({**first[0], "content": "from the cache"})])
    assert data(user1.get(f"/query/message/roomId/{room.room_id}"))[0]["content"] == "from the cache"


def test_a_new_message_makes_another_page_so_a_cached_page_is_never_stale(user1, room, redis_url):
    send(room, 1, 3)
    project()
    data(user1.get(f"/query/message/roomId/{room.room_id}"))
    [newest] = send(room, 2)
    project()
    assert data(user1.get(f"/query/message/roomId/{room.room_id}"))[0]["messageId"] == newest


def test_a_message_committed_late_inside_a_page_names_another_page(each_redis, unique):
    generation = f"t{unique}"
    cache.put_page(generation, 7, unedited([30, 10]), ['{"messageId":30}', '{"messageId":10}'])
    assert cache.page(generation, 7, unedited([30, 20, 10])) is None
    assert cache.page(generation, 7, unedited([30, 20])) is None
    assert cache.page(generation, 7, unedited([30, 10])) == ['{"messageId":30}', '{"messageId":10}']


def test_a_message_edited_inside_a_page_names_another_page(each_redis, unique):
    generation = f"t{unique}"
    cache.put_page(generation, 7, [(30, 0), (10, 0)], ['{"messageId":30}', '{"messageId":10}'])
    assert cache.page(generation, 7, [(30, 0), (10, 1)]) is None
    assert cache.page(generation, 7, [(30, 2), (10, 0)]) is None


def test_a_page_the_read_store_has_not_caught_up_with_comes_from_the_truth_and_is_not_cached(user1, room, redis_url):
    project()
    ids = send(room, 1, 2)[::-1]
    assert [m["messageId"] for m in data(user1.get(f"/query/message/roomId/{room.room_id}"))] == ids
    assert cache.page(active_store().generation, room.room_id, unedited(ids)) is None


def test_the_projector_caches_each_view_it_changes(each_redis, unique, db):
    projector = Projector()
    room_id = 800_000_000 + int(unique[:6], 16)
    generation = active_store().generation
    projector.handle([Envelope.wrap(e) for e in (room_created(room_id, [2, 1]), message(room_id, 50, 1))])
    view = json.loads(cache.json_of(cache.views(generation, [room_id])[room_id]))
    assert view["lastMessage"]["messageId"] == 50
    assert view["unreadStatus"] == {"2": True, "1": False}
    projector.handle([Envelope.wrap(marker(room_id, 2, 50))])
    view = json.loads(cache.json_of(cache.views(generation, [room_id])[room_id]))
    assert view["unreadStatus"] == {"2": False, "1": False}


def test_an_older_revision_never_replaces_a_newer_one(each_redis, unique):
    generation = f"t{unique}"
    newer, older = (
        cache.ViewEntry(5, "2026-11-25T10:00:02.000Z", "{}"),
        cache.ViewEntry(3, "2026-11-25T10:00:01.000Z", "{}"),
    )
    assert cache.put_views(generation, [(1, newer)])
    assert cache.put_views(generation, [(1, older)])
    assert cache.views(generation, [1]) == {1: newer.stored}
    newest = cache.ViewEntry(12, "2026-11-25T10:00:03.000Z", "{}")
    assert cache.put_views(generation, [(1, newest)])
    assert cache.views(generation, [1]) == {1: newest.stored}


def test_forgetting_the_views_orphans_every_cached_one(each_redis, unique):
    generation = f"t{unique}"
    cache.put_views(generation, [(1, cache.ViewEntry(1, "2026-11-25T10:00:00.000Z", "{}"))])
    assert cache.forget_views()
    assert cache.views(generation, [1]) == {}


def test_the_room_list_serves_cached_views_and_fills_the_missing_ones(each_redis, user1, room):
    quiet = do_create_room(1, NewRoom("Quiet", [3]))
    send(room, 2)
    project()
    listed = data(user1.get("/query/rooms"))
    assert [r["roomId"] for r in listed] == [room.room_id, quiet.room_id]
    generation = active_store().generation
    assert set(cache.views(generation, [room.room_id, quiet.room_id])) == {room.room_id, quiet.room_id}
    view = active_store().views.find_one({"_id": quiet.room_id})
    view["roomName"] = "from the cache"
    view["rev"] += 1
    cache.put_views(generation, [(quiet.room_id, cache_entry(view))])
    assert data(user1.get("/query/rooms"))[1]["roomName"] == "from the cache"


def test_a_room_the_read_store_lacks_is_listed_from_the_truth_beside_cached_ones(user1, room, redis_url):
    send(room, 2)
    project()
    data(user1.get("/query/rooms"))
    created = do_create_room(1, NewRoom("Brand new", [3]))
    assert [r["roomId"] for r in data(user1.get("/query/rooms"))] == [created.room_id, room.room_id]
    assert created.room_id not in cache.views(active_store().generation, [created.room_id])


def test_a_projector_that_could_not_write_the_cache_orphans_it_before_writing_again(redis_url, unique, monkeypatch, db):
    projector = Projector()
    room_id = 800_000_000 + int(unique[:6], 16)
    generation = active_store().generation
    projector.handle([Envelope.wrap(e) for e in (room_created(room_id, [2, 1]), message(room_id, 50, 1))])
    real = backends.redis_client()
    unreachable = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=None)
    monkeypatch.setattr(backends, "redis_client", lambda: unreachable)
    projector.handle([Envelope.wrap(message(room_id, 51, 2))])  # projected, not cached
    monkeypatch.setattr(backends, "redis_client", lambda: real)
    # Redis answers again: the projector orphans the entry showing message 50 without waiting for events.
    assert wait_for(lambda: cache.views(generation, [room_id]) == {}, 5)
    assert active_store().views.find_one({"_id": room_id})["lastMessage"]["messageId"] == 51


def test_reads_are_answered_without_redis(user1, room, redis_url, unreachable_redis):
    [sent] = send(room, 1)
    do_mark_read(2, ReadMarker(room.room_id, sent))
    project()
    assert data(user1.get("/query/rooms"))[0]["lastMessage"]["messageId"] == sent
    assert data(user1.get(f"/query/message/roomId/{room.room_id}"))[0]["messageId"] == sent


def test_a_customers_list_is_served_whole_while_it_holds_the_rooms_postgresql_names(each_redis, user1, room):
    send(room, 2)
    project()
    listed = data(user1.get("/query/rooms"))
    generation = active_store().generation
    listing = cache.room_list(generation, 1)
    assert listing.rooms == str(room.room_id)
    assert [json.loads(listing.body)] == listed
    cache.put_room_list(listing, listing.rooms, json.dumps({**listed[0], "roomName": "from the cache"}))
    assert data(user1.get("/query/rooms"))[0]["roomName"] == "from the cache"
    # A room PostgreSQL names that the list lacks: the list is assembled again.
    created = do_create_room(1, NewRoom("Brand new", [3]))
    assert [r["roomName"] for r in data(user1.get("/query/rooms"))] == ["Brand new", room.room_name]
    kept = cache.room_list(generation, 1)
    assert kept.rooms == str(room.room_id), "a list with a room not projected yet is not cached"
    project()
    data(user1.get("/query/rooms"))
    assert cache.room_list(generation, 1).rooms == ",".join(str(r) for r in sorted([room.room_id, created.room_id]))


def test_a_view_the_projector_writes_moves_its_participants_lists_on(each_redis, unique, db):
    projector = Projector()
    room_id = 800_000_000 + int(unique[:6], 16)
    generation = active_store().generation
    projector.handle([Envelope.wrap(e) for e in (room_created(room_id, [2, 1]), message(room_id, 50, 1))])
    before = {c: cache.room_list(generation, c) for c in (1, 2, 3)}
    for listing in before.values():
        cache.put_room_list(listing, str(room_id), "{}")
    projector.handle([Envelope.wrap(message(room_id, 51, 2))])
    after = {c: cache.room_list(generation, c) for c in (1, 2, 3)}
    assert after[1].body is None
    assert after[2].body is None
    assert after[3].body == "{}", "customer 3 is not in the room"


def test_forgetting_the_views_orphans_the_lists_too(each_redis, unique):
    generation = f"t{unique}"
    cache.put_room_list(cache.room_list(generation, 1), "5", "{}")
    assert cache.room_list(generation, 1).body == "{}"
    cache.forget_views()
    assert cache.room_list(generation, 1).body is None


def test_a_list_assembled_before_a_view_of_it_changed_is_not_served_even_if_stored_after(each_redis, unique):
    generation = f"t{unique}"
    cache.put_room_list(cache.room_list(generation, 1), "5", "{}")  # the list has a version now
    assembling = cache.room_list(generation, 1)
    assert cache.put_views(generation, [(5, cache.ViewEntry(2, "2026-11-25T10:00:00.000Z", "{}", [1, 2]))])
    cache.put_room_list(assembling, "5", '{"old": true}')
    assert cache.room_list(generation, 1).body is None


def test_what_another_process_forgets_is_orphaned_here_at_once(each_redis, unique):
    generation, view = f"t{unique}", cache.ViewEntry(1, "2026-11-25T10:00:00.000Z", "{}")
    cache.put_views(generation, [(1, view)])
    cache.put_room_list(cache.room_list(generation, 1), "1", "{}")
    assert cache.views(generation, [1]) == {1: view.stored}
    assert cache.room_list(generation, 1).body == "{}"
    backends.redis_client().incr(cache._epoch())  # what forget_views does, in another process
    assert cache.views(generation, [1]) == {}
    assert cache.room_list(generation, 1).body is None
    newer = cache.ViewEntry(2, "2026-11-25T10:00:01.000Z", "{}")
    assert cache.put_views(generation, [(1, newer)])
    assert cache.views(generation, [1]) == {1: newer.stored}


def project_since(projector, after_id):
    """Hand the projector what was logged after `after_id`, as Kafka would; the last row id."""
    from chat_query.rebuild import _events_after

    last = after_id
    for chunk_end, events in _events_after(after_id, 5000):
        projector.handle([Envelope.wrap(e) for e in events])
        last = chunk_end
    return last


def listed(client, room_id):
    return {r["roomId"]: r for r in data(client.get("/query/rooms"))}.get(room_id)


def test_cached_lists_and_views_follow_the_changes_of_membership_the_projector_applies(
    user1, user2, room, redis_url, db
):
    from django.test import Client

    from chat_command.services import do_add_participants, do_remove_participant, do_rename_room
    from conftest import login

    projector = Projector()
    logged = project_since(projector, 0)
    send(room, 2)
    logged = project_since(projector, logged)
    assert listed(user1, room.room_id)["unreadCount"] == {"2": 0, "1": 1}
    assert listed(user2, room.room_id)["participantIds"] == [2, 1]
    generation = active_store().generation
    assert cache.room_list(generation, 1).body is not None, "user1's list is cached"
    assert cache.room_list(generation, 2).body is not None, "user2's list is cached"

    do_add_participants(1, room.room_id, [3])
    do_rename_room(2, room.room_id, "Renamed")
    logged = project_since(projector, logged)
    user3 = Client(REMOTE_ADDR="127.0.0.3")
    login(user3, "user3", "12345")
    for client in (user1, user2, user3):
        view = listed(client, room.room_id)
        assert (view["roomName"], view["participantIds"]) == ("Renamed", [2, 1, 3])
        assert view["unreadCount"] == {"2": 0, "1": 1, "3": 1}

    do_remove_participant(1, room.room_id, 2)
    project_since(projector, logged)
    assert listed(user2, room.room_id) is None, "the room left the removed member's list"
    for client in (user1, user3):
        view = listed(client, room.room_id)
        assert (view["participantIds"], view["unreadCount"]) == ([1, 3], {"1": 0, "3": 2})
    cached = json.loads(cache.json_of(cache.views(generation, [room.room_id])[room.room_id]))
    assert cached["participantIds"] == [1, 3]


class _SlotNotServed:
    """A cluster client during a failover: the slot of every key has no primary yet."""

    def __getattr__(self, name: str):
        def refuse(*args, **kwargs):
            raise redis.exceptions.SlotNotCoveredError("slot 1234 is not covered by the cluster")

        return refuse


def test_a_cluster_slot_nobody_serves_yet_reads_the_read_store_and_fails_no_request(monkeypatch):
    # A RedisClusterException is not a RedisError: the cache must treat it as Redis being away.
    monkeypatch.setattr(backends, "redis_client", _SlotNotServed)
    assert cache.page("g", 1, [(1, 0), (2, 0)]) is None
    assert cache.views("g", [1, 2]) == {}
    assert cache.put_views("g", [(1, cache.ViewEntry(3, "2026-12-05T00:00:00.000Z", "{}"))]) is False
    assert cache.forget_views() is False

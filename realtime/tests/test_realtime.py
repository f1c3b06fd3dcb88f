"""STOMP over WebSocket and SockJS, end to end, against the real services and processes."""

import json
import time

import pytest
import websocket

from accounts.seed import seed_customers
from benchmarks.common import free_port
from benchmarks.drills import leaks
from chat_command.services import NewMessage, NewRoom, do_create_room, do_send_message
from infrastructure.testing.waiting import wait_for
from realtime.sockjs import DISCONNECT_DELAY_S
from realtime.tests.sockjs_http import XhrSession
from realtime.tests.stack import (
    RawClient,
    Stack,
    node_client,
    read_events,
    stomp_client,
    subscribe,
    token_for,
)

pytestmark = pytest.mark.integration
CEILING_S = 30  # what a wait may take before the test fails; far above what it takes


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, kafka_bootstrap):
    running = Stack().start()
    yield running
    running.stop()


@pytest.fixture
def room(stack, transactional_db):
    return a_room_of_1_and_2()


def a_room_of_1_and_2():
    seed_customers()
    return do_create_room(1, NewRoom("Realtime", [2]))


def send(room, sender, content):
    return do_send_message(sender, NewMessage(room.room_id, content, None)).message_id


def test_a_posted_message_reaches_another_users_stomp_subscription(stack, room, client):
    connection, frames = stomp_client(stack.ports[0], 2)
    subscribe(connection, frames, f"/topic/message/roomId/{room.room_id}", id="messages")
    from conftest import login

    login(client, "user1", "123")
    response = client.post(
        "/command/message", {"roomId": room.room_id, "content": "hi <b>2</b>"}, content_type="application/json"
    )
    message_id = response.json()["data"]["messageId"]
    kind, headers, body = frames.next()
    assert kind == "MESSAGE"
    assert headers["destination"] == f"/topic/message/roomId/{room.room_id}"
    assert headers["subscription"] == "messages"
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload == {
        "roomId": room.room_id,
        "messageId": message_id,
        "senderId": 1,
        "senderFullName": "Vũ Thanh Hải",
        "content": "hi <b>2</b>",
        "sentAt": response.json()["data"]["sentAt"],
    }
    connection.disconnect()


def test_edits_reactions_and_deletes_reach_the_rooms_message_updates_and_not_its_message_topic(stack, room):
    from chat_command.services import do_delete_message, do_edit_message, do_react

    message_id = send(room, 1, "first draft")
    connection, frames = stomp_client(stack.ports[1], 2)
    subscribe(connection, frames, f"/topic/message-updates/roomId/{room.room_id}", id="updates")
    subscribe(connection, frames, f"/topic/message/roomId/{room.room_id}", id="messages")
    do_edit_message(1, message_id, "final text")
    do_react(2, message_id, "👍", present=True)
    do_delete_message(1, message_id)
    later = send(room, 2, "a new message")
    # Updates share a topic (and a partition, by room), so they keep their order; the new
    # message comes on a topic of its own, before or after them.
    received = frames.bodies(4)
    pushes = [p for p in received if "type" in p] + [p for p in received if "type" not in p]
    assert [p.get("type") for p in pushes[:3]] == ["edited", "reactions", "deleted"]
    assert pushes[0]["message"]["content"] == "final text"
    assert pushes[0]["message"]["editedAt"]
    assert pushes[1]["message"]["reactions"] == [{"emoji": "👍", "customerIds": [2]}]
    assert pushes[2]["message"] | {"sentAt": None, "editedAt": None} == {
        "messageId": message_id,
        "roomId": room.room_id,
        "senderId": 1,
        "senderFullName": "Vũ Thanh Hải",
        "content": "",
        "sentAt": None,
        "editedAt": None,
        "deleted": True,
        "reactions": [],
        "type": "user",
        "system": None,
    }
    assert pushes[3]["messageId"] == later, "the message topic carried only the new message, in its own shape"
    assert "type" not in pushes[3]
    connection.disconnect()


def test_message_updates_of_a_room_are_refused_to_someone_not_in_it(stack, room):
    client = RawClient(stack.ports[0])
    client.send("CONNECT", accept_version="1.2", jwt_token=token_for(3))
    assert client.receive().command == "CONNECTED"
    client.send("SUBSCRIBE", destination=f"/topic/message-updates/roomId/{room.room_id}", id="s1", receipt="r1")
    refused = client.receive()
    assert refused.command == "ERROR"
    assert "Forbidden destination" in (refused.header("message") or "")


def projected(room_id):
    from chat_query.store import active_store

    query = {"_id": room_id, "roomName": {"$exists": True}}
    return wait_for(lambda: active_store(fresh=True).views.find_one(query) is not None, CEILING_S, 0.05)


def test_the_reference_sockjs_client_connects_and_receives_room_updates(stack, room):
    assert projected(room.room_id), "the room's creation is announced before the test listens"
    process = node_client(stack.ports[1], 2, f"/topic/message/roomId/{room.room_id}", "/user/topic/rooms", count=2)
    events = read_events(process, "subscribed")
    assert events[0] == {"event": "connected", "version": "1.1", "user": "2"}
    assert events[-1] == {"event": "subscribed"}, "printed once the server's receipts say the subscriptions are live"
    message_id = send(room, 1, "over sockjs")
    events = read_events(process, "timeout")
    messages = {e["destination"]: e["body"] for e in events if e["event"] == "message"}
    assert messages[f"/topic/message/roomId/{room.room_id}"]["messageId"] == message_id
    rooms = messages["/user/topic/rooms"]
    assert rooms["roomId"] == room.room_id
    assert rooms["lastMessage"]["messageId"] == message_id
    assert rooms["unreadStatus"] == {"2": True, "1": False}
    assert process.wait(10) == 0


@pytest.mark.parametrize("transport", ["xhr-streaming", "xhr-polling", "eventsource"])
def test_the_reference_sockjs_client_chats_over_each_http_transport(stack, room, transport):
    """As behind a proxy that blocks WebSockets: the same session over plain HTTP requests."""
    watcher, frames = stomp_client(stack.ports[0], 1)
    subscribe(watcher, frames, f"/topic/typing/roomId/{room.room_id}", id="typing")
    typing = json.dumps({"roomId": room.room_id, "isTyping": 1})
    messages = f"/topic/message/roomId/{room.room_id}"
    process = node_client(stack.ports[1], 2, messages, sends=(("/app/typing", typing),), transports=transport)
    try:
        assert read_events(process, "subscribed")[0] == {"event": "connected", "version": "1.1", "user": "2"}
        assert frames.bodies(1) == [{"roomId": room.room_id, "typing": True, "customerId": 2}], "its SEND arrived"
        message_id = send(room, 1, f"over {transport} 100% <b>")
        events = read_events(process, "message")
        assert events[-1]["body"]["messageId"] == message_id
        assert events[-1]["body"]["content"] == f"over {transport} 100% <b>"
        assert process.wait(10) == 0
    finally:
        process.kill()
        process.communicate()
        watcher.disconnect()


def test_a_polling_client_that_stops_polling_is_released_like_a_closed_websocket(stack, room, unique):
    person, shared, watcher, frames = watched_person(stack, f"poll-{unique}")
    before = gauges(stack.ports[1])
    client = XhrSession(f"http://127.0.0.1:{stack.ports[1]}")
    client.connect(token_for(person.customer_id))
    assert frames.bodies(1) == [{"customerId": person.customer_id, "online": True}]
    subscribed = client.send("SUBSCRIBE", destination=f"/topic/message/roomId/{shared.room_id}", id="m", receipt="r")
    assert subscribed.status == 204
    assert client.stomp_frames()[0].startswith("RECEIPT")
    assert gauges(stack.ports[1]) == (before[0] + 1, before[1] + 1)
    stopped = time.monotonic()
    # From here on the client polls no more: after SockJS's disconnect delay the session ends.
    assert frames.bodies(1) == [{"customerId": person.customer_id, "online": False}]
    assert time.monotonic() - stopped > DISCONNECT_DELAY_S - 1, "not before the client had time to poll again"
    assert wait_for(
        lambda: all(now <= then for now, then in zip(gauges(stack.ports[1]), before, strict=True)), CEILING_S, 0.05
    )
    assert client.send("SEND", destination="/app/extendOnline").status == 404, "the session is gone"
    watcher.disconnect()


def gauges(port: int) -> tuple[int, int]:
    """The web process's open connections and subscriptions, from its /metrics."""
    return leaks([port], live=0)


def test_both_web_processes_deliver_the_same_push(stack, room):
    first, first_frames = stomp_client(stack.ports[0], 2)
    second, second_frames = stomp_client(stack.ports[1], 1)
    for connection, frames in ((first, first_frames), (second, second_frames)):
        subscribe(connection, frames, f"/topic/message/roomId/{room.room_id}", id="m")
    message_id = send(room, 1, "fan out")
    assert first_frames.bodies(1)[0]["messageId"] == message_id
    assert second_frames.bodies(1)[0]["messageId"] == message_id
    first.disconnect()
    second.disconnect()


@pytest.mark.parametrize(
    "destination",
    ["/topic/message/roomId/*", "/topic/**", "/topic/message/roomId/999999", "/queue/anything", "/user/2/topic/rooms"],
)
def test_foreign_wildcard_and_unknown_destinations_are_refused_and_the_connection_survives(stack, room, destination):
    client = RawClient(stack.ports[0])
    client.send("CONNECT", accept_version="1.2", jwt_token=token_for(3))
    assert client.receive().command == "CONNECTED"
    client.send("SUBSCRIBE", destination=destination, id="s1", receipt="r1")
    refused = client.receive()
    assert refused.command == "ERROR"
    assert refused.header("receipt-id") == "r1"
    assert "Forbidden destination" in (refused.header("message") or "")
    client.send("SUBSCRIBE", destination="/user/topic/rooms", id="s2", receipt="r2")
    assert client.receive().header("receipt-id") == "r2", "the connection is still usable"


def test_clients_may_send_only_to_the_two_app_destinations(stack, room):
    client = RawClient(stack.ports[0])
    client.send("CONNECT", accept_version="1.2", jwt_token=token_for(2))
    assert client.receive().command == "CONNECTED"
    forged = json.dumps({"roomId": room.room_id, "messageId": 1, "content": "forged"}).encode()
    client.send("SEND", forged, destination=f"/topic/message/roomId/{room.room_id}")
    assert "is not allowed" in (client.receive().header("message") or "")
    client.send("SEND", b'{"roomId": %d, "isTyping": 1}' % 999999, destination="/app/typing")
    assert "is not a participant of Room 999999" in (client.receive().header("message") or "")


def test_connect_without_a_valid_token_is_an_error_then_close(stack, room):
    for token in (None, "not-a-token"):
        client = RawClient(stack.ports[0])
        headers = {"accept_version": "1.2"} | ({"jwt_token": token} if token else {})
        client.send("CONNECT", **headers)
        error = client.receive()
        assert error.command == "ERROR"
        assert error.header("message") in ("Authentication required", "Authentication failed")
        assert client.closed()


def test_the_handshake_cookie_authenticates_too(stack, room):
    client = RawClient(stack.ports[0], cookie=token_for(2))
    client.send("CONNECT", accept_version="1.1,1.0", heart_beat="0,0")
    connected = client.receive()
    assert connected.command == "CONNECTED"
    assert connected.header("user-name") == "2"
    assert connected.header("version") == "1.1"


@pytest.mark.parametrize("path", ["/ws/chat", "/ws/chat/000/crosssite/websocket"], ids=["stomp", "sockjs"])
def test_a_page_of_another_site_cannot_open_a_socket_with_the_users_cookie(stack, path):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        RawClient(stack.ports[0], cookie=token_for(2), path=path, origin="http://evil.example")
    assert refused.value.status_code == 403, "refused before the upgrade: no socket, so no CONNECTED"


@pytest.mark.parametrize(
    "origin",
    [{}, {"origin": "http://localhost:5500"}, {"suppress_origin": True}],
    ids=["the servers own page", "a listed page", "no origin (not a browser)"],
)
def test_the_servers_own_page_a_listed_page_and_non_browser_clients_connect(stack, room, origin):
    client = RawClient(stack.ports[0], cookie=token_for(2), **origin)
    client.send("CONNECT", accept_version="1.2")
    assert client.receive().command == "CONNECTED"


def test_the_reference_page_served_from_port_5500_connects_over_sockjs(stack, room):
    process = node_client(stack.ports[1], 2, "/user/topic/rooms", origin="http://localhost:5500")
    try:
        assert read_events(process, "subscribed")[0] == {"event": "connected", "version": "1.1", "user": "2"}
    finally:
        process.kill()
        process.communicate()


def watched_person(stack, username):
    """A person of the test's own (the seeded ids recur in every test and may still be online),
    in a room with customer 1, who watches the room's online status."""
    from accounts.models import Customer

    person = Customer.objects.create_user(username, "pw", full_name=username, email=f"{username}@x.test")
    shared = do_create_room(1, NewRoom("Presence", [person.customer_id]))
    watcher, frames = stomp_client(stack.ports[0], 1)
    subscribe(watcher, frames, f"/topic/onlineStatus/roomId/{shared.room_id}", id="presence")
    return person, shared, watcher, frames


def test_presence_is_per_connection_across_two_tabs(stack, room, unique):
    person, shared, watcher, frames = watched_person(stack, f"tabs-{unique}")
    subscribe(watcher, frames, f"/topic/message/roomId/{shared.room_id}", id="messages")
    tab_a, tab_a_frames = stomp_client(stack.ports[0], person.customer_id)
    assert frames.bodies(1) == [{"customerId": person.customer_id, "online": True}]
    tab_b, _ = stomp_client(stack.ports[1], person.customer_id)
    assert tab_a_frames.session, "CONNECTED names the connection"
    tab_a.disconnect()
    assert wait_for(lambda: not presence_recorded(person.customer_id, tab_a_frames.session), CEILING_S, 0.05)
    # Published after anything that closing tab A announced, and on the same feed: it comes first.
    barrier = send(shared, 1, "after tab A closed")
    first = frames.bodies(1)[0]
    assert first.get("messageId") == barrier, f"a second tab, and closing one of two, change nothing: {first}"
    tab_b.disconnect()
    assert frames.bodies(1) == [{"customerId": person.customer_id, "online": False}]
    watcher.disconnect()


def presence_recorded(customer_id, connection_id):
    """Whether the web process has yet to record that this connection left."""
    from infrastructure import backends
    from realtime import presence

    connections = presence._keys(customer_id)[0]
    return backends.redis_client().zscore(connections, connection_id) is not None


def test_typing_starts_once_and_expires_after_two_seconds(stack, room):
    watcher, frames = stomp_client(stack.ports[0], 1)
    subscribe(watcher, frames, f"/topic/typing/roomId/{room.room_id}", id="typing")
    typist, _ = stomp_client(stack.ports[1], 2)
    for _ in range(3):
        typist.send("/app/typing", json.dumps({"roomId": room.room_id, "isTyping": 1}))
    started = time.monotonic()
    assert frames.bodies(1) == [{"roomId": room.room_id, "typing": True, "customerId": 2}]
    assert frames.bodies(1, timeout=CEILING_S) == [{"roomId": room.room_id, "typing": False, "customerId": 2}]
    # Only a lower bound: a busy machine delays the expiry, it cannot bring it forward.
    assert time.monotonic() - started > 1.5, "typing expires on its own, after two seconds"
    typist.send("/app/typing", json.dumps({"roomId": room.room_id, "isTyping": 1}))
    typist.send("/app/typing", json.dumps({"roomId": room.room_id, "isTyping": 0}))
    assert [b["typing"] for b in frames.bodies(2)] == [True, False]
    # The watcher types after the stop: the sweep that expires it also passes the stopped typing's
    # deadline, and expires in deadline order, so an expiry of the stopped typing would come first.
    watcher.send("/app/typing", json.dumps({"roomId": room.room_id, "isTyping": 1}))
    assert frames.bodies(2, timeout=CEILING_S) == [
        {"roomId": room.room_id, "typing": True, "customerId": 1},
        {"roomId": room.room_id, "typing": False, "customerId": 1},
    ], "an explicit stop is not followed by an expiry"
    typist.disconnect()
    watcher.disconnect()


def test_a_reconnecting_client_recovers_missed_messages_before_live_ones(stack, room):
    seen = send(room, 1, "seen before the drop")
    missed = [send(room, 1, f"missed {n}") for n in range(3)]
    connection, frames = stomp_client(stack.ports[0], 2)
    connection.subscribe(f"/topic/message/roomId/{room.room_id}", id="m", headers={"since-message-id": str(seen)})
    live = send(room, 1, "live")
    received = [b["messageId"] for b in frames.bodies(4)]
    assert received == [*missed, live], "in order, no gap, no duplicate"
    later = send(room, 1, "later")
    assert frames.bodies(1)[0].get("messageId") == later, "no repeat of a recovered message comes after it"
    connection.disconnect()


def test_logout_ends_the_open_stomp_sessions_of_that_token(stack, room, client):
    from conftest import login

    token = login(client, "user2", "1234").cookies["jwt_token"].value
    ws = RawClient(stack.ports[1])
    ws.send("CONNECT", accept_version="1.2", jwt_token=token)
    assert ws.receive().command == "CONNECTED"
    client.post("/auth/logout")
    ended = ws.receive()
    assert ended.command == "ERROR"
    assert ended.header("message") == "Session ended"
    assert ws.closed()


def test_a_client_that_stops_reading_is_disconnected_and_others_are_unaffected(stack, room):
    import socket

    port = stack.uvicorn()
    healthy, frames = stomp_client(port, 1)
    subscribe(healthy, frames, f"/topic/message/roomId/{room.room_id}", id="m")
    stalled = RawClient(port)
    stalled.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.send("CONNECT", accept_version="1.2", jwt_token=token_for(2))
    assert stalled.receive().command == "CONNECTED"
    stalled.send("SUBSCRIBE", destination=f"/topic/message/roomId/{room.room_id}", id="m", receipt="ready")
    assert stalled.receive().command == "RECEIPT"
    # From here on the stalled client reads nothing.
    big = "x" * 3900
    total = 1500
    for n in range(total):
        send(room, 1, f"{n} {big}")
    received = [json.loads(frames.next(timeout=60)[2])["content"].split()[0] for _ in range(total)]
    assert received == [str(n) for n in range(total)], "the healthy client got everything, in order"
    # The client reads again, with its receive window open wide again (Linux keeps it clamped to
    # the small buffer otherwise, and the backlog would trickle in for minutes): what was sent
    # before the cut-off, then the close.
    stalled.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    stalled.ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, 1 << 20)
    code = stalled.close_code()
    delivered = sum(1 for f in stalled.pending if f.command == "MESSAGE")
    assert code == 4008, "the server closed it as too slow, so it reconnects and recovers"
    assert delivered < total, f"the stalled client was cut off after {delivered} frames, not served all {total}"
    healthy.disconnect()


def test_a_session_whose_token_expires_is_closed(stack, room, settings):
    settings.JWT_LIFETIME_SECONDS = 2
    client = RawClient(stack.ports[0])
    client.send("CONNECT", accept_version="1.2", heart_beat="0,0", jwt_token=token_for(2))
    assert client.receive().command == "CONNECTED"
    client.ws.settimeout(10)
    expired = client.receive()
    assert expired.command == "ERROR"
    assert expired.header("message") == "Session expired"
    assert client.closed()


def subscribed_raw_client(port, customer_id, destination, **headers):
    ws = RawClient(port)
    ws.send("CONNECT", accept_version="1.2", jwt_token=token_for(customer_id))
    assert ws.receive().command == "CONNECTED"
    ws.send("SUBSCRIBE", id="m", destination=destination, receipt="subscribed", **headers)
    return ws


@pytest.fixture
def stack_on_its_own_redis(private_redis, django_db_setup, django_db_blocker, kafka_bootstrap):
    """A web process as production runs it (uvicorn), the relay and the pusher, on the test's own Redis."""
    running = Stack(redis_url=private_redis.url).start((free_port(),), server="uvicorn", roles=("pusher",))
    yield running
    running.stop()


# Longer than daphne's 1 s close handshake, after which it resets the connection.
BUSY_CLIENT_S = 1.5


def test_a_redis_restart_closes_subscriptions_so_clients_reconnect_and_recover(
    private_redis, stack_on_its_own_redis, transactional_db
):
    """Pushes in flight and group memberships die with Redis: the client must resubscribe and recover."""
    room = a_room_of_1_and_2()
    port = stack_on_its_own_redis.ports[0]
    destination = f"/topic/message/roomId/{room.room_id}"
    ws = subscribed_raw_client(port, 2, destination)
    assert ws.receive().command == "RECEIPT"
    seen = send(room, 1, "before the restart")
    assert json.loads(ws.receive().body)["messageId"] == seen
    private_redis.stop()
    try:
        missed = send(room, 1, "while Redis is down")
    finally:
        private_redis.start()
    time.sleep(BUSY_CLIENT_S)  # a client busy elsewhere still learns why it was closed
    assert ws.close_code() == 4012, "closed with 4012 (reconnect and recover), neither reset nor left quiet"
    again = subscribed_raw_client(port, 2, destination, since_message_id=str(seen))
    after = send(room, 1, "after the restart")
    frames = [again.receive() for _ in range(3)]
    assert [json.loads(f.body)["messageId"] for f in frames if f.command == "MESSAGE"] == [missed, after]

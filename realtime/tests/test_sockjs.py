"""SockJS's HTTP transports in one process: the sessions they carry, their framings, and the
views' answers to requests they do not serve. End to end (real processes, nginx, browsers) in
test_realtime.py, deploy/tests and test_sockjs_browser.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from django.test import AsyncClient

from realtime import sockjs, views
from realtime.session import StompSession

T = TypeVar("T")
SCOPE: dict[str, Any] = {"type": "http", "headers": []}
CEILING_S = 10  # what a scenario may take before it fails; far above what it takes


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(CEILING_S):
            return await scenario

    return asyncio.run(bounded())


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def streamed(response: Any) -> AsyncGenerator[bytes, None]:
    """A streaming response's body, chunk by chunk."""
    return aiter(response.streaming_content)


async def every(frames: AsyncIterator[T]) -> list[T]:
    return [frame async for frame in frames]


class Recorder(StompSession):
    """A STOMP session that records what reaches it, and takes a moment over each message."""

    def __init__(self, transport: Any, scope: dict[str, Any]) -> None:
        super().__init__(transport, scope)
        self.messages: list[str] = []
        self.ended = asyncio.Event()

    async def received(self, data: str | bytes) -> None:
        await asyncio.sleep(0.01)
        self.messages.append(str(data))

    async def closed(self) -> None:
        await super().closed()
        self.ended.set()


async def recording(session_id: str = "rec") -> tuple[sockjs.HttpSession, Recorder]:
    session = sockjs.HttpSession(session_id, SCOPE, None, carried=Recorder)
    await session.start()
    assert isinstance(session.stomp, Recorder)
    return session, session.stomp


def test_the_opening_poll_gets_the_open_frame_and_the_next_poll_what_was_sent_meanwhile():
    async def scenario() -> None:
        session, opened = await sockjs.open_or_find("s1", SCOPE, None)
        assert opened
        assert await every(session.frames(streaming=False, opening=True)) == ["o"]
        await session.send_frames(["MESSAGE\n\none\x00", "MESSAGE\n\ntwo\x00"])
        polled = await every(session.frames(streaming=False, opening=False))
        assert polled == ["a" + json.dumps(["MESSAGE\n\none\x00", "MESSAGE\n\ntwo\x00"], separators=(",", ":"))]
        assert (await sockjs.open_or_find("s1", SCOPE, None)) == (session, False)

    run(scenario())


def test_a_second_receiving_request_is_told_another_is_open_and_the_first_keeps_receiving():
    async def scenario() -> None:
        session, _ = await sockjs.open_or_find("s2", SCOPE, None)
        first = session.frames(streaming=True, opening=True)
        assert await anext(first) == "o"
        assert await every(session.frames(streaming=True, opening=False)) == [sockjs.ANOTHER_RECEIVER]
        await session.send_frames(["X"])
        assert await anext(first) == 'a["X"]'
        await first.aclose()

    run(scenario())


def test_a_streaming_request_sends_a_heartbeat_when_nothing_came(monkeypatch):
    monkeypatch.setattr(sockjs, "HEARTBEAT_S", 0.05)

    async def scenario() -> None:
        session, _ = await sockjs.open_or_find("s3", SCOPE, None)
        stream = session.frames(streaming=True, opening=True)
        assert [await anext(stream), await anext(stream), await anext(stream)] == ["o", "h", "h"]
        await stream.aclose()
        assert await every(session.frames(streaming=False, opening=False)) == ["h"], "a poll ends at its heartbeat"

    run(scenario())


def test_a_streaming_response_ends_after_its_byte_limit_and_the_next_one_goes_on(monkeypatch):
    monkeypatch.setattr(sockjs, "STREAM_LIMIT_BYTES", 100)

    async def scenario() -> None:
        session, _ = await sockjs.open_or_find("s4", SCOPE, None)
        stream = session.frames(streaming=True, opening=True)
        assert await anext(stream) == "o"
        await session.send_frames(["x" * 120])
        assert await anext(stream) == 'a["' + "x" * 120 + '"]'
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        await session.send_frames(["next"])
        assert await anext(session.frames(streaming=True, opening=False)) == 'a["next"]'

    run(scenario())


def test_a_session_whose_client_stops_receiving_ends_and_releases_its_stomp_session(monkeypatch):
    monkeypatch.setattr(sockjs, "DISCONNECT_DELAY_S", 0.05)

    async def scenario() -> None:
        session, _ = await sockjs.open_or_find("s5", SCOPE, None)
        await every(session.frames(streaming=False, opening=True))
        assert sockjs.find("s5", None) is session, "it waits for the client's next poll"
        await until(lambda: sockjs.find("s5", None) is None)
        assert session.closed
        assert session.stomp.gone, "the STOMP session was released"

    run(scenario())


def test_a_session_opened_by_a_request_that_never_received_ends_too(monkeypatch):
    monkeypatch.setattr(sockjs, "DISCONNECT_DELAY_S", 0.05)

    async def scenario() -> None:
        session, _ = await sockjs.open_or_find("s6", SCOPE, None)
        await until(lambda: sockjs.find("s6", None) is None)
        assert session.closed

    run(scenario())


def test_a_session_that_keeps_a_receiving_request_attached_lives_on(monkeypatch):
    monkeypatch.setattr(sockjs, "DISCONNECT_DELAY_S", 0.05)
    monkeypatch.setattr(sockjs, "HEARTBEAT_S", 0.02)

    async def scenario() -> None:
        session, _ = await sockjs.open_or_find("s7", SCOPE, None)
        stream = session.frames(streaming=True, opening=True)
        for _ in range(10):
            await anext(stream)
        assert not session.closed
        assert sockjs.find("s7", None) is session
        await stream.aclose()

    run(scenario())


def test_posted_messages_are_handled_in_order_even_when_a_posting_request_is_cut_short():
    async def scenario() -> None:
        session, stomp = await recording()
        await session.post(["1", "2"])
        poster = asyncio.create_task(session.post(["3"]))
        await asyncio.sleep(0)
        poster.cancel()  # the request ended; what it posted is handled all the same
        await session.post(["4"])
        await until(lambda: len(stomp.messages) == 4)
        assert stomp.messages == ["1", "2", "3", "4"]

    run(scenario())


def test_a_poster_waits_while_the_inbox_is_full_and_gives_up_when_the_session_closes(monkeypatch):
    monkeypatch.setattr(sockjs, "INBOX_LIMIT", 2)

    async def scenario() -> None:
        session, stomp = await recording()
        posts = [asyncio.create_task(session.post([str(n)])) for n in range(6)]
        await asyncio.sleep(0)
        assert sum(post.done() for post in posts) < 6, "some posters wait for room"
        await session.close(3000, "Go away!")
        await asyncio.gather(*posts)
        await stomp.ended.wait()

    run(scenario())


def test_frames_not_received_hold_the_stomp_session_back_until_a_client_takes_them(monkeypatch):
    monkeypatch.setattr(sockjs, "PENDING_LIMIT_BYTES", 10)

    async def scenario() -> None:
        session, _ = await sockjs.open_or_find("s8", SCOPE, None)
        await every(session.frames(streaming=False, opening=True))
        await session.send_frames(["0123456789"])
        writer = asyncio.create_task(session.send_frames(["more"]))
        await asyncio.sleep(0.05)
        assert not writer.done(), "the STOMP session's writer waits: its own queue grows"
        assert await every(session.frames(streaming=False, opening=False)) == ['a["0123456789"]']
        await writer
        await session.send_frames(["0123456789"])
        blocked = asyncio.create_task(session.send_frames(["x"]))
        await asyncio.sleep(0.05)
        await session.close(3000, "Go away!")
        await blocked  # a closed session lets its writer go

    run(scenario())


def test_a_stomp_session_that_fails_delivers_its_error_then_the_close_frame_to_every_later_request():
    async def scenario() -> None:
        session, _ = await sockjs.open_or_find("s9", SCOPE, None)
        await every(session.frames(streaming=False, opening=True))
        await session.post(["CONNECT\naccept-version:1.2\n\n\x00"])  # no token
        await until(lambda: session.closed)
        received = await every(session.frames(streaming=True, opening=False))
        assert len(received) == 2
        assert received[0].startswith('a["ERROR\\nmessage:Authentication required')
        assert received[1] == 'c[4000,"Authentication required"]'
        assert await every(session.frames(streaming=False, opening=False)) == [received[1]]
        assert session.stomp.gone, "the STOMP session was released"

    run(scenario())


def test_a_session_opened_with_the_cookie_serves_only_requests_with_that_cookie():
    async def scenario() -> None:
        session, _ = await sockjs.open_or_find("s10", SCOPE, "token-a")
        assert sockjs.find("s10", "token-a") is session
        assert sockjs.find("s10", "token-b") is None
        assert sockjs.find("s10", None) is None, "a session id alone is no credential"
        with pytest.raises(LookupError):
            await sockjs.open_or_find("s10", SCOPE, "token-b")
        opened_without, _ = await sockjs.open_or_find("s11", SCOPE, None)
        assert sockjs.find("s11", "any") is opened_without

    run(scenario())


@pytest.mark.parametrize(
    ("raw", "messages"),
    [('["a","b"]', ["a", "b"]), ('"one"', ["one"]), ("[]", [])],
)
def test_a_client_sends_a_json_array_of_strings_or_one_string(raw, messages):
    assert sockjs.parse_messages(raw) == messages


@pytest.mark.parametrize("raw", ["[1]", '{"a": 1}', "[", '["a", null]'])
def test_anything_else_a_client_sends_is_refused(raw):
    with pytest.raises(ValueError):  # noqa: PT011 - json's own errors are ValueErrors too
        sockjs.parse_messages(raw)


def test_an_event_stream_frame_keeps_a_percent_sign_through_sockjs_clients_decoding():
    # sockjs-client decodeURI()s the data: "100%" must arrive as "100%25".
    assert views._event('a["100%"]') == b'data: a["100%25"]\r\n\r\n'


def test_markup_in_a_message_cannot_end_htmlfiles_script():
    frame = sockjs.messages_frame(["MESSAGE\n\n</script><script>alert(1)</script>&\x00"])
    written = views._script(frame)
    assert b"</script><script>" not in written
    assert b"<script>alert" not in written
    assert written.startswith(b"<script>\np(")
    assert written.endswith(b");\n</script>\r\n")
    # What the page's p() receives is the frame itself.
    inner = written.removeprefix(b"<script>\np(").removesuffix(b");\n</script>\r\n")
    assert json.loads(inner) == frame


# --- The views, in this process -------------------------------------------------------


def test_an_xhr_poll_opens_a_session_and_xhr_send_reaches_it():
    async def scenario() -> None:
        client = AsyncClient()
        opened = await client.post("/ws/chat/000/v1/xhr")
        assert opened.status_code == 200
        assert opened["Content-Type"] == "application/javascript; charset=UTF-8"
        assert b"".join(await every(streamed(opened))) == b"o\n"
        sent = await client.post("/ws/chat/000/v1/xhr_send", '["CONNECT\\n\\n\\u0000"]', content_type="text/plain")
        assert sent.status_code == 204
        polled = await client.post("/ws/chat/000/v1/xhr")
        body = b"".join(await every(streamed(polled))).decode()
        assert body.startswith('a["ERROR\\nmessage:Authentication required')
        assert body.endswith("\n")

    run(scenario())


@pytest.mark.parametrize(
    ("body", "message"),
    [("", "Payload expected."), ("[1]", "Broken JSON encoding"), ("not json", "Broken JSON encoding")],
)
def test_xhr_send_refuses_a_body_that_is_not_sockjs_messages_with_a_json_400(body, message):
    async def scenario() -> None:
        client = AsyncClient()
        await client.post("/ws/chat/000/v2/xhr")
        refused = await client.post("/ws/chat/000/v2/xhr_send", body, content_type="text/plain")
        assert refused.status_code == 400
        assert refused.json()["message"].startswith(message)

    run(scenario())


def test_xhr_send_to_a_session_this_process_does_not_hold_is_a_json_404():
    async def scenario() -> None:
        refused = await AsyncClient().post("/ws/chat/000/none/xhr_send", '["x"]', content_type="text/plain")
        assert refused.status_code == 404
        assert refused.json()["success"] is False

    run(scenario())


def test_a_request_with_another_cookie_cannot_use_a_session():
    async def scenario() -> None:
        owner, other = AsyncClient(), AsyncClient()
        owner.cookies["jwt_token"] = "owner"
        other.cookies["jwt_token"] = "other"
        await owner.post("/ws/chat/000/v3/xhr")
        assert (await other.post("/ws/chat/000/v3/xhr_send", '["x"]', content_type="text/plain")).status_code == 404
        assert (await other.post("/ws/chat/000/v3/xhr")).status_code == 404
        assert (await owner.post("/ws/chat/000/v3/xhr_send", '["x"]', content_type="text/plain")).status_code == 204

    run(scenario())


def test_a_listed_page_gets_credentialed_cors_and_another_sites_page_a_json_403(settings):
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["http://localhost:5500"]

    async def scenario() -> None:
        listed = await AsyncClient().post("/ws/chat/000/v4/xhr", headers={"Origin": "http://localhost:5500"})
        assert listed.status_code == 200
        assert listed["Access-Control-Allow-Origin"] == "http://localhost:5500"
        assert listed["Access-Control-Allow-Credentials"] == "true"
        for path in ("/ws/chat/000/v5/xhr", "/ws/chat/000/v4/xhr_send", "/ws/chat/000/v5/xhr_streaming"):
            refused = await AsyncClient().post(
                path, '["x"]', content_type="text/plain", headers={"Origin": "http://evil.example"}
            )
            assert refused.status_code == 403, path
            assert refused.json()["success"] is False
        assert sockjs.find("v5", None) is None, "a refused request opened nothing"

    run(scenario())


@pytest.mark.parametrize(
    ("path", "method"),
    [("xhr", "get"), ("xhr_streaming", "get"), ("xhr_send", "get"), ("eventsource", "post"), ("htmlfile", "post")],
)
def test_each_transport_answers_only_its_method(path, method):
    async def scenario() -> None:
        refused = await getattr(AsyncClient(), method)(f"/ws/chat/000/v6/{path}")
        assert refused.status_code == 405
        assert refused.json()["success"] is False

    run(scenario())


@pytest.mark.parametrize("callback", ["", "alert(1)", "a</script>", "x" * 65])
def test_htmlfile_needs_a_plain_callback_name(callback):
    async def scenario() -> None:
        refused = await AsyncClient().get("/ws/chat/000/v7/htmlfile", {"c": callback})
        assert refused.status_code == 400

    run(scenario())


def test_htmlfile_and_eventsource_open_with_their_own_framings():
    async def scenario() -> None:
        client = AsyncClient()
        page = await client.get("/ws/chat/000/v8/htmlfile", {"c": "_jp.a1"})
        assert page["Content-Type"] == "text/html; charset=UTF-8"
        assert page["X-Frame-Options"] == "SAMEORIGIN", "it runs in an iframe of the page"
        stream = streamed(page)
        head = await anext(stream)
        assert b"parent._jp.a1" in head
        assert len(head) >= 1024
        assert await anext(stream) == b'<script>\np("o");\n</script>\r\n'
        await stream.aclose()
        events = await client.get("/ws/chat/000/v9/eventsource")
        assert events["Content-Type"] == "text/event-stream; charset=UTF-8"
        stream = streamed(events)
        assert [await anext(stream), await anext(stream)] == [b"\r\n", b"data: o\r\n\r\n"]
        await stream.aclose()

    run(scenario())

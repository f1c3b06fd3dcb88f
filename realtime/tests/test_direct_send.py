"""A STOMP session on a server with the direct send (the web role's protocol): frames are written
without a writer task, gathered per turn of the event loop, and the socket's buffer is the queue
that the slow-consumer limit watches."""

import asyncio
from typing import Any

from realtime.session import (
    CLOSE_ERROR,
    CLOSE_FEED_LOST,
    CLOSE_TOO_SLOW,
    FRAMES_PER_MESSAGE,
    MAX_QUEUED_BYTES,
    StompSession,
)


class Socket:
    """A transport offering the direct send; `events` records writes and closes in their order."""

    def __init__(self, holds: int = 0) -> None:
        self.events: list[Any] = []
        self.holds = holds  # what the socket says its buffer holds after each write
        self.open = True  # False: the peer has gone and the direct send refuses (returns None)
        self.fails = False  # the write raises

    async def send_frames(self, frames: list[str]) -> None:
        raise AssertionError("a session with the direct send writes no other way")

    async def close(self, code: int, reason: str) -> None:
        # The socket stays writable: only the session itself may keep later frames off it.
        self.events.append(("close", code))

    def direct_send(self):
        return self.write

    def write(self, frames: list[bytes]) -> int | None:
        if self.fails:
            raise OSError("the write failed")
        if not self.open:
            self.events.append(("refused", list(frames)))
            return None
        self.events.append(list(frames))
        return self.holds


async def opened(socket: Socket) -> StompSession:
    session = StompSession(socket, {"headers": []})
    await session.opened()
    return session


def test_the_frames_of_one_turn_go_out_together_when_it_ends_without_a_writer_task():
    async def scenario() -> None:
        socket = Socket()
        session = await opened(socket)
        assert session.tasks == [], "no task per connection writes its frames"
        session.enqueue(b"MESSAGE\n\none\0")
        session.enqueue("\n")
        assert socket.events == [], "nothing is written during the turn"
        await asyncio.sleep(0)
        assert socket.events == [[b"MESSAGE\n\none\0", b"\n"]], "one write, in order, once the turn is over"
        session.enqueue(b"MESSAGE\n\ntwo\0")
        await asyncio.sleep(0)
        assert socket.events[1:] == [[b"MESSAGE\n\ntwo\0"]]
        await session.closed()

    asyncio.run(scenario())


def test_sessions_written_in_the_same_turn_each_get_their_own_frames():
    async def scenario() -> None:
        sockets = [Socket() for _ in range(3)]
        sessions = [await opened(socket) for socket in sockets]
        for n, session in enumerate(sessions):
            session.enqueue(f"frame {n}".encode())
        await asyncio.sleep(0)
        assert [socket.events for socket in sockets] == [[[f"frame {n}".encode()]] for n in range(3)]
        for session in sessions:
            await session.closed()

    asyncio.run(scenario())


def test_a_socket_holding_more_than_the_limit_is_closed_as_too_slow_and_written_no_more():
    async def scenario() -> None:
        socket = Socket(holds=MAX_QUEUED_BYTES + 1)
        session = await opened(socket)
        session.enqueue(b"MESSAGE\n\nlast read\0")
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the close runs in a task of its own
        session.enqueue(b"MESSAGE\n\nnever\0")
        await asyncio.sleep(0)
        assert socket.events == [[b"MESSAGE\n\nlast read\0"], ("close", CLOSE_TOO_SLOW)]
        await session.closed()

    asyncio.run(scenario())


def test_a_failing_session_writes_its_error_before_the_close():
    async def scenario() -> None:
        socket = Socket()
        session = await opened(socket)
        session.enqueue(b"MESSAGE\n\nbefore\0")
        await session.fail("Broken")
        [[before, error], closed] = socket.events
        assert before == b"MESSAGE\n\nbefore\0"
        assert error.startswith(b"ERROR\n")
        assert b"message:Broken" in error
        assert closed == ("close", CLOSE_ERROR)
        await session.closed()

    asyncio.run(scenario())


def test_frames_for_a_socket_already_closing_are_dropped_quietly(caplog):
    async def scenario() -> None:
        socket = Socket()
        session = await opened(socket)
        socket.open = False  # the peer closed; the disconnect has not reached the session yet
        session.enqueue(b"MESSAGE\n\nlost\0")
        await asyncio.sleep(0)
        session.enqueue(b"MESSAGE\n\nlost too\0")
        await asyncio.sleep(0)
        assert socket.events == [("refused", [b"MESSAGE\n\nlost\0"]), ("refused", [b"MESSAGE\n\nlost too\0"])]
        assert not session.closing, "the disconnect ends the session, not a refused write"
        await session.closed()

    asyncio.run(scenario())
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_a_write_that_fails_closes_the_session_so_its_client_recovers():
    async def scenario() -> None:
        socket = Socket()
        session = await opened(socket)
        socket.fails = True
        session.enqueue(b"MESSAGE\n\nlost\0")
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the close runs in a task of its own
        assert socket.events == [("close", CLOSE_FEED_LOST)], "closed with 4012: reconnect and recover"
        await session.closed()

    asyncio.run(scenario())


def test_a_failing_session_whose_socket_is_full_is_closed_once():
    async def scenario() -> None:
        socket = Socket(holds=MAX_QUEUED_BYTES + 1)
        session = await opened(socket)
        session.enqueue(b"MESSAGE\n\nunread\0")
        await session.fail("Broken")
        await asyncio.sleep(0)
        closes = [event for event in socket.events if event[0] == "close"]
        assert closes == [("close", CLOSE_TOO_SLOW)], "one close: ASGI refuses a second"
        await session.closed()

    asyncio.run(scenario())


def test_many_frames_of_one_turn_go_out_in_messages_of_at_most_64_frames():
    async def scenario() -> None:
        socket = Socket()
        session = await opened(socket)
        frames = [f"MESSAGE\n\n{n}\0".encode() for n in range(150)]
        for frame in frames:
            session.enqueue(frame)
        await asyncio.sleep(0)
        assert [len(message) for message in socket.events] == [FRAMES_PER_MESSAGE, FRAMES_PER_MESSAGE, 22]
        assert [frame for message in socket.events for frame in message] == frames
        await session.closed()

    asyncio.run(scenario())

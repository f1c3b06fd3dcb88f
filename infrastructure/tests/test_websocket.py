"""The web role's WebSocket protocol: its direct send, against websockets' framing and on a real
uvicorn server."""

import struct
import threading

import pytest
import websocket
from websockets.frames import Frame, Opcode

from infrastructure.http.websocket import DIRECT_SEND, DirectSendProtocol, text_frame
from infrastructure.testing.threaded_server import serving


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_text_frame_is_the_one_websockets_writes_for_a_server(size):
    payload = ("é" * size).encode()[:size]  # multi-byte characters cut anywhere: bytes are bytes
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


# What the application saw, for the test to check once `done` is set.
seen: dict[str, object] = {}
done = threading.Event()


async def direct_app(scope, receive, send):
    """Writes "one" directly, "two" through ASGI, "three" directly, then closes."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    write = scope["extensions"][DIRECT_SEND]["send"]
    seen["before accept"] = write(b"too early")
    await send({"type": "websocket.accept"})
    seen["held"] = write(b"one")
    await send({"type": "websocket.send", "text": "two"})
    write("three \N{SNOWMAN}".encode())
    await send({"type": "websocket.close", "code": 4321})
    seen["after close"] = write(b"too late")
    done.set()


@pytest.fixture
def server():
    with serving(direct_app, ws=DirectSendProtocol) as port:
        yield port


def test_the_direct_send_writes_whole_messages_in_order_with_the_asgi_sends_and_nothing_out_of_turn(server):
    seen.clear()
    done.clear()
    client = websocket.create_connection(f"ws://127.0.0.1:{server}/", timeout=10)
    received = [client.recv() for _ in range(3)]
    opcode, frame = client.recv_data_frame(control_frame=True)  # and answers the close
    assert received == ["one", "two", "three \N{SNOWMAN}"]
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert struct.unpack("!H", frame.data[:2])[0] == 4321
    assert done.wait(10)
    # The server ends the connection once the close is answered: nothing came after its close frame.
    rest = b""
    while chunk := client.sock.recv(4096):
        rest += chunk
    assert rest == b"", "nothing reaches the wire after the close frame"
    assert seen["before accept"] is None, "nothing is written before the handshake's answer"
    assert seen["after close"] is None, "nor after the close frame"
    assert isinstance(seen["held"], int), "it says what the socket's buffer holds"

"""A SockJS client over HTTP polling for tests, doing what sockjs-client does with xhr-polling:
POST .../xhr to receive frames, POST .../xhr_send to send them."""

from __future__ import annotations

import http.client
import json
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from realtime.stomp import Frame, encode


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def frames(self) -> list[str]:
        """The SockJS frames of a receiving answer, one per line."""
        return [line for line in self.body.decode().split("\n") if line]


@dataclass
class XhrSession:
    base_url: str
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    headers: dict[str, str] = field(default_factory=dict)

    def post(self, transport: str, body: str = "", timeout: float = 40.0) -> Answer:
        url = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
        try:
            connection.request("POST", f"/ws/chat/000/{self.session}/{transport}", body.encode(), self.headers)
            response = connection.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def poll(self) -> list[str]:
        """One xhr request's frames: "o", "h", 'a[...]' or 'c[...]'."""
        answer = self.post("xhr")
        assert answer.status == 200, answer
        return answer.frames()

    def send(self, command: str, body: str = "", **headers: str) -> Answer:
        """One STOMP frame, through xhr_send."""
        named = tuple((k if k == "jwt_token" else k.replace("_", "-"), v) for k, v in headers.items())
        frame = encode(Frame(command, named, body.encode()))
        return self.post("xhr_send", json.dumps([frame.decode()]))

    def stomp_frames(self, polls: int = 5) -> list[str]:
        """The STOMP frames of the next polls, until some arrive (a poll may carry only a heartbeat)."""
        for _ in range(polls):
            frames = [f for frame in self.poll() if frame.startswith("a") for f in json.loads(frame[1:])]
            if frames:
                return frames
        return []

    def connect(self, token: str) -> str:
        """Open the session and CONNECT with the token; the CONNECTED frame."""
        assert self.poll() == ["o"]
        assert self.send("CONNECT", accept_version="1.2", heart_beat="0,0", jwt_token=token).status == 204
        connected = self.stomp_frames()
        assert connected, "no answer to CONNECT"
        assert connected[0].startswith("CONNECTED"), connected
        return connected[0]

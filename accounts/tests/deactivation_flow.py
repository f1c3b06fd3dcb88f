"""Deactivation as an operator does it on a running server: the admin's own form, over HTTP.

`check_deactivation_ends_every_session(base_url, manage)` drives a server at `base_url` (nginx
in front of the production roles, or the embedded server of `make run`); `manage(code)` runs
Python in `manage.py shell` against that server's database, to create the people involved.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from http.cookiejar import CookieJar
from urllib.parse import urlencode

import websocket

from realtime.stomp import Frame, FrameParser, encode

Manage = Callable[[str], str]


class Browser:
    """Cookies kept across requests, as a browser keeps them; 4xx and 5xx are answers too."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirects())

    def request(self, path: str, *, json_body: object = None, form: dict[str, str] | None = None) -> tuple[int, str]:
        data, kind = None, None
        if json_body is not None:
            data, kind = json.dumps(json_body).encode(), "application/json"
        elif form is not None:
            data, kind = urlencode(form).encode(), "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.base_url + path, data=data)
        if kind:
            request.add_header("Content-Type", kind)
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name and c.value is not None)

    def csrf_form(self, path: str) -> dict[str, str]:
        status, page = self.request(path)
        assert status == 200, page[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token is not None, "the admin page carries its CSRF token"
        return {"csrfmiddlewaretoken": token.group(1)}


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def check_deactivation_ends_every_session(base_url: str, manage: Manage) -> None:
    name = f"leaver{uuid.uuid4().hex[:8]}"
    ids = manage(
        "from accounts.models import Customer\n"
        f"Customer.objects.create_superuser('op-{name}', 'op-pw', email='op-{name}@example.test')\n"
        f"c = Customer.objects.create_user('{name}', 'pw-{name}', full_name='Leaver', email='{name}@example.test')\n"
        "print(c.customer_id)\n"
    )
    customer_id = int(ids.split()[-1])

    person = Browser(base_url)
    assert person.request("/auth/login", json_body={"username": name, "password": f"pw-{name}"})[0] == 200
    status, body = person.request("/command/room", json_body={"roomName": "Before", "targetCustomerIds": [1]})
    assert status == 200, body
    room_id = json.loads(body)["data"]
    stomp = LiveSession(base_url, person.cookie("jwt_token"))

    operator = Browser(base_url)
    login_form = {**operator.csrf_form("/admin/login/"), "username": f"op-{name}", "password": "op-pw"}
    assert operator.request("/admin/login/?next=/admin/", form=login_form)[0] == 302
    change = f"/admin/accounts/customer/{customer_id}/change/"
    form = {
        **operator.csrf_form(change),
        **{"username": name, "full_name": "Leaver", "email": f"{name}@example.test", "phone_number": ""},
        **{"avatar_color": "#4CAF50", "roles": "ROLE_USER"},  # "is_active" left out: the box unticked
    }
    status, page = operator.request(change, form=form)
    assert status == 302, page[:3000]

    error = stomp.next_frame()
    assert (error.command, error.header("message")) == ("ERROR", "Session ended")
    stomp.assert_closed()
    answers = [
        person.request("/command/message", json_body={"roomId": room_id, "content": "after"})[0],
        person.request("/query/rooms")[0],
        person.request(f"/query/message/roomId/{room_id}")[0],
        person.request("/customer/info")[0],
    ]
    assert answers == [401, 401, 401, 401]
    assert person.request("/auth/login", json_body={"username": name, "password": f"pw-{name}"})[0] == 401


class LiveSession:
    """A STOMP session over the raw WebSocket, authenticated by the handshake's cookie."""

    def __init__(self, base_url: str, token: str) -> None:
        url = base_url.replace("http://", "ws://") + "/ws/chat"
        self.ws = websocket.create_connection(url, header=[f"Cookie: jwt_token={token}"], timeout=15)
        self.parser = FrameParser()
        self.ws.send(encode(Frame("CONNECT", (("accept-version", "1.2"),), b"")).decode())
        # CONNECTED comes once the session watches for its end (realtime.session._watch_session).
        assert self.next_frame().command == "CONNECTED"

    def next_frame(self) -> Frame:
        while True:
            for frame in self.parser.feed(self.ws.recv()):
                if frame is not None:
                    return frame

    def assert_closed(self) -> None:
        try:
            while self.ws.recv():
                pass
        except websocket.WebSocketConnectionClosedException:
            pass

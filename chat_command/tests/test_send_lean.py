"""POST /command/message serves its common request without DRF's machinery
(infrastructure/http/lean.py): every request, common or not, gets the answer DRF gives it."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory

from chat_command.views import send_message

CASES = {
    "a send": {"body": {"content": "hello", "clientMessageId": "lean-1"}},
    "a send, charset named": {
        "body": {"content": "hello", "clientMessageId": "lean-2"},
        "content_type": "application/json; charset=utf-8",
    },
    "a send, JSON asked for": {"body": {"content": "hi", "clientMessageId": "lean-3"}, "accept": "application/json"},
    "the same key in header and body": {
        "body": {"content": "hello", "clientMessageId": "lean-4"},
        "headers": {"Idempotency-Key": "lean-4"},
    },
    "differing keys": {"body": {"content": "hello", "clientMessageId": "a"}, "headers": {"Idempotency-Key": "b"}},
    "no content": {"body": {}},
    "content too long": {"body": {"content": "x" * 4001}},
    "an unknown field": {"body": {"content": "hi", "colour": "red", "clientMessageId": "lean-5"}},
    "someone else's room": {"body": {"content": "hi"}, "room": 10**9},
    "no cookie": {"body": {"content": "hi"}, "cookie": None},
    "a forged cookie": {"body": {"content": "hi"}, "cookie": "not.a.token"},
    "malformed JSON": {"raw": b'{"roomId": 1,'},
    "NaN": {"raw": b'{"roomId": 1, "content": NaN}'},
    "not UTF-8": {"raw": b'{"roomId": 1, "content": "\xff"}'},
    "an empty body": {"raw": b""},
    "a list": {"raw": b"[1, 2]"},
    "a body over Django's upload limit": {"body": {"content": "x" * 3_000_000}},
    "text/plain": {"body": {"content": "hi"}, "content_type": "text/plain"},
    "latin-1": {
        "body": {"content": "hi", "clientMessageId": "lean-6"},
        "content_type": "application/json; charset=latin-1",
    },
    "HTML asked for": {"body": {"content": "hi"}, "accept": "text/html"},
    "a query string": {"body": {"content": "hi", "clientMessageId": "lean-7"}, "query": "format=json"},
    "GET": {"method": "GET"},
    "PUT": {"method": "PUT", "body": {"content": "hi"}},
    "OPTIONS": {"method": "OPTIONS"},
}


def _request(case: dict, room_id: int, token: str):
    body = case.get("raw")
    if body is None:
        fields = {"roomId": case.get("room", room_id), **case.get("body", {})}
        body = json.dumps(fields).encode()
    headers = dict(case.get("headers", {}))
    cookie = case.get("cookie", token)
    if cookie is not None:
        headers["Cookie"] = f"jwt_token={cookie}"
    if "accept" in case:
        headers["Accept"] = case["accept"]
    path = "/command/message" + (f"?{case['query']}" if "query" in case else "")
    content_type = case.get("content_type", "application/json")
    return RequestFactory().generic(case.get("method", "POST"), path, body, content_type, headers=headers)


def _answer(view, request) -> tuple[int, bytes, dict[str, str], str] | str:
    """What the view answers, or the error it raises for the middleware to answer."""
    try:
        response = view(request)
    except Exception as error:  # noqa: BLE001 - compared, not handled
        return f"raised {type(error).__name__}: {error}"
    if hasattr(response, "render"):
        response.render()
    return response.status_code, response.content, dict(response.items()), response.cookies.output()


@pytest.fixture
def token(user1) -> str:
    return user1.cookies["jwt_token"].value


@pytest.mark.parametrize("name", CASES)
def test_each_request_gets_the_answer_drf_gives(token, room, name):
    case = CASES[name]
    served = _answer(send_message, _request(case, room.room_id, token))
    through_drf = _answer(send_message.drf_view, _request(case, room.room_id, token))
    assert served == through_drf


def test_a_session_that_logout_ended_gets_the_answer_drf_gives(user1, token, room):
    user1.post("/auth/logout")
    case = {"body": {"content": "hi"}}
    served = _answer(send_message, _request(case, room.room_id, token))
    assert served == _answer(send_message.drf_view, _request(case, room.room_id, token))
    assert served[0] == 401, served


def test_the_common_request_does_not_go_through_drf(token, room, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("went through DRF")

    monkeypatch.setattr(send_message.cls, "dispatch", refuse)
    answer = _answer(send_message, _request(CASES["a send"], room.room_id, token))
    assert not isinstance(answer, str), answer
    status, body, headers, _ = answer
    assert status == 200
    assert json.loads(body)["success"] is True
    assert set(headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    with pytest.raises(AssertionError, match="went through DRF"):
        send_message(_request(CASES["OPTIONS"], room.room_id, token))


def test_the_send_is_still_in_the_openapi_schema(client):
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    operation = schema.json()["paths"]["/command/message"]["post"]
    assert operation["operationId"]
    assert "requestBody" in operation

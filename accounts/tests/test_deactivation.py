"""Deactivating a customer (the admin's "active" box) ends every session their tokens hold."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client

from accounts.models import Customer, RevokedToken
from accounts.tokens import InvalidToken, has_ended, identify, issue_token, verify_token, verify_tokens
from chat_command.services import NewMessage, NewRoom, do_create_room, do_send_message
from conftest import login
from infrastructure.http.errors import InvalidSessionToken
from realtime.tests.test_metrics import Client as StompClient

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def set_active_in_the_admin(operator: Client, customer_id: int, active: bool) -> None:
    """Submit the customer's change form as an operator does, with only the "active" box changed."""
    form = operator.get(f"/admin/accounts/customer/{customer_id}/change/").context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if name in form.fields and value not in (None, False) and name not in ("password", "groups", "user_permissions")
    }
    data.pop("is_active", None)
    if active:
        data["is_active"] = "on"
    response = operator.post(f"/admin/accounts/customer/{customer_id}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Customer.objects.get(pk=customer_id).is_active is active


def refusals(client: Client, room_id: int) -> list[int]:
    """What each kind of endpoint answers the client: the send, the hot reads and the rest."""

    def post(path: str, body: dict[str, object]) -> int:
        return client.post(path, body, content_type="application/json").status_code

    return [
        post("/command/message", {"roomId": room_id, "content": "hi"}),
        client.get("/query/rooms").status_code,
        client.get(f"/query/message/roomId/{room_id}").status_code,
        client.get("/customer/info").status_code,
        post("/command/read", {"roomId": room_id, "messageId": 1}),
    ]


def test_deactivating_a_customer_in_the_admin_refuses_the_tokens_they_hold_at_once(operator, user2, room):
    sent = do_send_message(2, NewMessage(room.room_id, "before", None))
    assert user2.get(f"/query/message/roomId/{room.room_id}").status_code == 200
    stored = Customer.objects.get(pk=2)
    messages_before = room.messages.count()

    set_active_in_the_admin(operator, 2, active=False)

    assert refusals(user2, room.room_id) == [401, 401, 401, 401, 401]
    assert room.messages.count() == messages_before, "a refused send stores nothing"
    assert room.messages.filter(message_id=sent.message_id).exists()
    fresh = Client(REMOTE_ADDR="127.0.0.42")
    response = fresh.post("/auth/login", {"username": "user2", "password": "1234"}, content_type="application/json")
    assert response.status_code == 401
    assert Customer.objects.get(pk=2).password == stored.password, "nothing else about them changed"


def test_reactivating_a_customer_does_not_bring_back_the_tokens_deactivation_ended(operator, user2, room):
    set_active_in_the_admin(operator, 2, active=False)
    set_active_in_the_admin(operator, 2, active=True)

    assert refusals(user2, room.room_id) == [401, 401, 401, 401, 401]
    # A token's issue time is in whole seconds: a login in the second of the deactivation is
    # indistinguishable from the tokens it ended.
    not_before = Customer.objects.get(pk=2).tokens_not_before
    while time.time() < not_before:
        time.sleep(0.05)
    again = Client(REMOTE_ADDR="127.0.0.43")
    login(again, "user2", "1234")
    assert again.get(f"/query/message/roomId/{room.room_id}").status_code == 200


@pytest.mark.parametrize("revoked", [False, True])
@pytest.mark.parametrize("active", [False, True])
@pytest.mark.parametrize("issued", ["before the floor", "at the floor"])
def test_the_send_statement_and_every_other_check_agree_on_which_sessions_ended(seeded, revoked, active, issued):
    """The send's generated statement, has_ended() and verify_tokens() all take
    accounts.tokens.ended_sql; they agree."""
    room = do_create_room(1, NewRoom("Agreement", [3]))
    Customer.objects.filter(pk=3).update(is_active=active, tokens_not_before=int(time.time()))
    token = issue_token(customer_id=3, username="user3", full_name="C", roles="ROLE_USER")
    session = identify(token)
    if issued == "before the floor":
        Customer.objects.filter(pk=3).update(tokens_not_before=session.issued_at + 1)
    if revoked:
        RevokedToken.objects.create(token_id=session.token_id, expires_at="2999-01-01T00:00:00Z")

    try:
        do_send_message(3, NewMessage(room.room_id, "checked", None), session=session)
        refused = False
    except InvalidSessionToken:
        refused = True

    assert refused == has_ended(session)
    assert refused == isinstance(verify_tokens([token])[0], InvalidToken)
    assert refused == (revoked or not active or issued == "before the floor")


def test_verify_tokens_answers_each_token_in_order_from_one_statement(seeded, django_assert_num_queries):
    tokens = [
        token_for_user2(),
        "not a token",
        token_for_user2(),
        issue_token(customer_id=3, username="user3", full_name="C", roles=""),
    ]
    RevokedToken.objects.create(token_id=identify(tokens[2]).token_id, expires_at="2999-01-01T00:00:00Z")
    Customer.objects.filter(pk=3).update(is_active=False)

    with django_assert_num_queries(1):
        verified = verify_tokens(tokens)

    assert [type(v).__name__ for v in verified] == ["Principal", "InvalidToken", "InvalidToken", "InvalidToken"]
    for token, outcome in zip(tokens, verified, strict=True):
        try:
            expected = verify_token(token)
        except InvalidToken as refused:
            expected = refused
        assert (type(outcome), str(outcome)) == (type(expected), str(expected))
    assert verify_tokens([]) == []


def test_deactivation_closes_the_customers_live_stomp_sessions(operator, seeded):
    async def scenario() -> tuple[str, str, int]:
        stomp = StompClient()
        assert (await stomp.ws.connect())[0]
        await stomp.send("CONNECT", accept_version="1.2", jwt_token=token_for_user2())
        assert (await stomp.receive()).command == "CONNECTED"
        await sync_to_async(set_active_in_the_admin)(operator, 2, False)
        error = await stomp.receive()
        closed = await stomp.ws.receive_output(timeout=10)
        await stomp.ws.disconnect()
        await sync_to_async(connections.close_all)()
        return error.command, error.header("message") or "", closed.get("code", 0)

    command, message, code = asyncio.run(scenario())
    assert (command, message) == ("ERROR", "Session ended")
    assert code == 4000


def token_for_user2() -> str:
    return issue_token(customer_id=2, username="user2", full_name="Customer 2", roles="ROLE_USER")


def test_the_admin_deactivates_customers_and_never_deletes_them(operator):
    customer = Customer.objects.get(username="user3")
    page = operator.get(f"/admin/accounts/customer/{customer.pk}/delete/")
    assert page.status_code == 403
    assert operator.post(f"/admin/accounts/customer/{customer.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [customer.pk], "post": "yes"}
    operator.post("/admin/accounts/customer/", bulk)
    assert Customer.objects.filter(pk=customer.pk).exists()

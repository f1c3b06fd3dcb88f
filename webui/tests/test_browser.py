"""End to end in headless Chromium: two people chat through the browser client on the real stack.

The stack is two daphne web processes, the relay, the projector and the pusher on the real
services; the first person's browser talks to one web process and the second's to the other,
so every push crosses Kafka and the Redis channel layer. Set CHAT_UI_BASE_URL to drive both
browsers through a front (nginx) instead, with CHAT_UI_WEB_PORTS naming the two ports the
front forwards to (the stack's web processes listen there).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import WebSocketRoute, expect

from accounts.services import BAD_CREDENTIALS
from chat_command.services import NewMessage, NewRoom, do_create_room, do_send_message
from webui.tests.browser import WAIT_MS

# The longest test waits for 18 steps of WAIT_MS each (180 s), and the first also for the
# stack's start (60 s): each wait then fails with its own message before the test's timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

USER1_NAME = "Vũ Thanh Hải"
USER2_NAME = "Huỳnh Đặng Tấn Phát"


def test_two_people_create_a_room_and_chat_with_typing_and_seen_by(people):
    alice, bob = people
    alice.page.goto(alice.base_url + "/")
    expect(alice.page.get_by_role("button", name="Log in")).to_be_visible()
    alice.shot("login")
    alice.log_in("user1", "123")
    bob.log_in("user2", "1234")

    alice.page.get_by_role("button", name="New room").click()
    search = alice.page.get_by_label("Find people by phone number or name")
    search.fill("Tấn Phát")
    expect(alice.page.get_by_role("button", name=f"Add {USER2_NAME}")).to_be_visible(timeout=WAIT_MS)
    search.fill("zzz-nobody")
    expect(alice.page.locator("#new-room-error")).to_have_text("Nobody found for “zzz-nobody”.", timeout=WAIT_MS)
    search.fill("0918 765")
    alice.page.get_by_role("button", name=f"Add {USER2_NAME}").click()
    alice.page.get_by_label("Room name").fill("Weekend plans")
    alice.shot("new-room")
    alice.page.get_by_role("button", name="Create").click()
    expect(alice.page.locator("#room-name")).to_have_text("Weekend plans", timeout=WAIT_MS)

    # The room reaches the other person's list in real time, with no reload.
    expect(bob.room_button("Weekend plans")).to_be_visible(timeout=WAIT_MS)
    alice.send("Hi! Are you free on Saturday?")
    expect(alice.messages).to_have_text(["Hi! Are you free on Saturday?"], timeout=WAIT_MS)
    expect(bob.room_button("Weekend plans")).to_have_class("room-item unread", timeout=WAIT_MS)
    expect(bob.room_button("Weekend plans").locator(".room-last")).to_have_text("Hi! Are you free on Saturday?")
    bob.shot("rooms-unread")

    bob.open_room("Weekend plans")
    expect(bob.messages).to_have_text(["Hi! Are you free on Saturday?"], timeout=WAIT_MS)
    expect(bob.page.locator("#room-online")).to_have_text("2 of 2 online", timeout=WAIT_MS)
    expect(bob.room_button("Weekend plans")).to_have_class("room-item", timeout=WAIT_MS)
    question = alice.page.locator(".message", has_text="Are you free")
    expect(question.locator(".seen")).to_have_text(f"Seen by {USER2_NAME}", timeout=WAIT_MS)

    bob.page.locator("#composer-input").press_sequentially("Yes, ")
    expect(alice.page.locator("#typing")).to_have_text(f"{USER2_NAME} is typing…", timeout=WAIT_MS)
    bob.page.locator("#composer-input").press_sequentially("let's go hiking")
    bob.page.locator("#composer-input").press("Enter")
    expect(alice.page.locator("#typing")).to_have_text("", timeout=WAIT_MS)

    conversation = ["Hi! Are you free on Saturday?", "Yes, let's go hiking"]
    for person in (alice, bob):
        expect(person.messages).to_have_text(conversation, timeout=WAIT_MS)
    expect(bob.page.locator(".message .seen")).to_have_text(["", f"Seen by {USER1_NAME}"], timeout=WAIT_MS)
    # The reply is their own, so the place where they read up to stays under the question.
    expect(alice.page.locator(".message .seen")).to_have_text([f"Seen by {USER2_NAME}", ""])
    expect(alice.room_button("Weekend plans")).to_have_class("room-item", timeout=WAIT_MS)
    expect(alice.room_button("Weekend plans").locator(".room-last")).to_have_text("Yes, let's go hiking")
    alice.shot("conversation")

    bob.page.set_viewport_size({"width": 375, "height": 740})
    expect(bob.page.locator("#sidebar")).to_be_hidden()
    bob.shot("conversation-phone")
    bob.page.get_by_role("button", name="Back to rooms").click()
    expect(bob.room_button("Weekend plans")).to_be_visible()
    assert alice.errors == bob.errors == []


def test_after_a_reload_the_history_pages_back_to_the_first_message(people):
    alice, _ = people
    room = do_create_room(1, NewRoom("Long history", [2]))
    sent = [f"history {n:02d}" for n in range(1, 46)]
    for text in sent:
        do_send_message(1 if len(text) % 2 else 2, NewMessage(room.room_id, text, None))

    alice.log_in("user1", "123")
    alice.page.reload()
    expect(alice.page.locator("#chat-view")).to_be_visible(timeout=WAIT_MS)
    alice.open_room("Long history")
    expect(alice.messages.last).to_have_text("history 45", timeout=WAIT_MS)
    assert alice.messages.count() < len(sent)

    older = alice.page.locator("#older-button")
    for _ in range(5):
        if older.text_content() == "This is the beginning of the conversation.":
            break
        shown = alice.messages.count()
        alice.page.locator("#messages").evaluate("list => { list.scrollTop = 0; }")
        expect(alice.messages.nth(shown)).to_be_attached(timeout=WAIT_MS)
    expect(older).to_have_text("This is the beginning of the conversation.", timeout=WAIT_MS)
    expect(alice.messages).to_have_text(sent)


class Connection:
    """Stands between a page and the server's WebSocket, so a test can cut it and restore it."""

    def __init__(self) -> None:
        self.routes: list[WebSocketRoute] = []
        self.up = True

    def route(self, socket: WebSocketRoute) -> None:
        if not self.up:
            socket.close()
            return
        socket.connect_to_server()
        self.routes.append(socket)

    def drop(self) -> None:
        self.up = False
        for socket in self.routes:
            socket.close()
        self.routes.clear()


def test_a_dropped_connection_recovers_the_missed_messages_once_and_in_order(people):
    alice, _ = people
    room = do_create_room(2, NewRoom("Flaky line", [1]))
    do_send_message(2, NewMessage(room.room_id, "before the drop", None))
    connection = Connection()
    alice.page.route_web_socket("**/ws/chat", connection.route)
    alice.log_in("user1", "123")
    alice.open_room("Flaky line")
    expect(alice.messages).to_have_text(["before the drop"], timeout=WAIT_MS)
    # The other person may still count as online from an earlier test: presence lives in Redis.
    expect(alice.page.locator("#room-online")).to_have_text(re.compile(r"^[12] of 2 online$"), timeout=WAIT_MS)
    alice.page.evaluate("window.sameDocument = true")

    connection.drop()
    expect(alice.page.locator("#connection")).to_contain_text("Connection lost", timeout=WAIT_MS)
    missed = ["while away 1", "while away 2", "while away 3"]
    for text in missed:
        do_send_message(2, NewMessage(room.room_id, text, None))
    # The page counts its attempts: from "attempt 2" on, a reconnection was refused.
    refused = re.compile(r"\(attempt ([2-9]|\d{2,})\)")
    expect(alice.page.locator("#connection")).to_contain_text(refused, timeout=WAIT_MS)
    alice.shot("reconnecting")
    connection.up = True

    expect(alice.page.locator("#connection")).to_have_text("", timeout=WAIT_MS)
    expect(alice.messages).to_have_text(["before the drop", *missed], timeout=WAIT_MS)
    do_send_message(2, NewMessage(room.room_id, "after the return", None))
    expect(alice.messages).to_have_text(["before the drop", *missed, "after the return"], timeout=WAIT_MS)
    assert alice.page.evaluate("window.sameDocument") is True


def test_markup_in_room_names_names_and_messages_is_shown_as_text(people):
    alice, bob = people
    room_name = '<img src=x onerror="window.injected=1">'
    hostile = "<script>window.injected = 2</script><b>bold?</b>"
    alice.log_in("user1", "123")
    bob.log_in("user2", "1234")
    bob.page.get_by_role("button", name="Edit profile").click()
    bob.page.get_by_label("Name", exact=True).fill("<i>Bob</i>")
    bob.page.get_by_role("button", name="Save").click()
    expect(bob.page.locator("#me-name")).to_have_text("<i>Bob</i>", timeout=WAIT_MS)

    do_create_room(2, NewRoom(room_name, [1]))
    expect(alice.room_button(room_name)).to_be_visible(timeout=WAIT_MS)
    bob.open_room(room_name)
    bob.send(hostile)
    alice.open_room(room_name)
    expect(alice.messages).to_have_text([hostile], timeout=WAIT_MS)
    expect(alice.page.locator(".message .sender")).to_have_text(["<i>Bob</i>"])
    expect(alice.room_button(room_name).locator(".room-last")).to_have_text(hostile, timeout=WAIT_MS)
    expect(alice.page.locator("#room-online")).to_have_text("2 of 2 online", timeout=WAIT_MS)
    assert alice.page.locator("#message-list script, #message-list b, #room-list img, #message-list i").count() == 0
    assert alice.page.evaluate("window.injected") is None
    alice.shot("markup-as-text")


def test_api_errors_are_shown_as_readable_messages(people):
    alice, _ = people
    alice.page.goto(alice.base_url + "/")
    alice.page.get_by_label("Username").fill("user1")
    alice.page.get_by_label("Password").fill("wrong")
    alice.page.get_by_role("button", name="Log in").click()
    expect(alice.page.locator("#login-error")).to_have_text(BAD_CREDENTIALS, timeout=WAIT_MS)

    alice.log_in("user1", "123")
    alice.page.get_by_role("button", name="Edit profile").click()
    alice.page.get_by_label("Email").fill("not-an-address")
    alice.page.get_by_role("button", name="Save").click()
    expect(alice.page.locator("#profile-error")).to_have_text("Email is not a valid address.", timeout=WAIT_MS)
    alice.shot("profile-error")

    alice.page.get_by_label("Email").fill("user1@example.test")
    alice.page.get_by_label("Avatar colour").fill("#aa3377")
    alice.page.get_by_role("button", name="Save").click()
    expect(alice.page.locator("#profile-dialog")).to_be_hidden(timeout=WAIT_MS)
    expect(alice.page.locator("#me-avatar")).to_have_css("background-color", "rgb(170, 51, 119)")

    alice.page.get_by_role("button", name="Log out").click()
    expect(alice.page.locator("#login-error")).to_have_text("You are logged out.", timeout=WAIT_MS)
    alice.page.reload()
    expect(alice.page.get_by_role("button", name="Log in")).to_be_visible(timeout=WAIT_MS)


def test_a_person_chats_with_the_keyboard_alone(people):
    alice, bob = people
    do_create_room(1, NewRoom("Keyboard only", [2]))
    bob.log_in("user2", "1234")
    alice.page.goto(alice.base_url + "/")
    expect(alice.page.get_by_label("Username")).to_be_focused(timeout=WAIT_MS)
    alice.page.keyboard.type("user1")
    alice.page.keyboard.press("Tab")
    alice.page.keyboard.type("123")
    alice.page.keyboard.press("Enter")
    expect(alice.room_button("Keyboard only")).to_be_visible(timeout=WAIT_MS)
    for _ in range(10):
        if alice.page.evaluate("document.activeElement.dataset.roomId"):
            break
        alice.page.keyboard.press("Tab")
    expect(alice.room_button("Keyboard only")).to_be_focused()
    alice.page.keyboard.press("Enter")
    expect(alice.page.locator("#composer-input")).to_be_focused(timeout=WAIT_MS)
    alice.page.keyboard.type("typed, never clicked")
    alice.page.keyboard.press("Enter")
    bob.open_room("Keyboard only")
    expect(bob.messages).to_have_text(["typed, never clicked"], timeout=WAIT_MS)

"""End to end in headless Chromium: editing, deleting, reacting to and searching messages.

Two people on different web processes (see conftest.py): what one does reaches the other's
screen through the pusher, live.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat_command.services import NewMessage, NewRoom, do_create_room, do_send_message
from chat_query.models import SearchEntry
from infrastructure.testing.waiting import wait_for
from webui.tests.browser import WAIT_MS, Person

# The longest test waits for about 20 steps of WAIT_MS each, and the first also for the stack's start.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def both_in_room(alice: Person, bob: Person, name: str, last_text: str) -> None:
    alice.log_in("user1", "123")
    bob.log_in("user2", "1234")
    for person in (alice, bob):
        person.open_room(name)
        expect(person.messages.last).to_have_text(last_text, timeout=WAIT_MS)


def test_the_sender_edits_and_deletes_a_message_and_the_other_person_sees_it_live(people):
    alice, bob = people
    room = do_create_room(1, NewRoom("Message actions", [2]))
    do_send_message(2, NewMessage(room.room_id, "When do we meet?", None))
    do_send_message(1, NewMessage(room.room_id, "See you at 10", None))
    both_in_room(alice, bob, "Message actions", "See you at 10")

    mine = alice.message("See you at 10")
    mine.hover()
    expect(mine.get_by_role("button", name="Edit")).to_have_css("opacity", "1")
    expect(alice.message("When do we meet?").get_by_role("button", name="Edit")).to_have_count(0)
    expect(bob.message("See you at 10").get_by_role("button", name="Edit")).to_have_count(0)
    mine.get_by_role("button", name="Edit").click()
    editor = alice.page.get_by_label("Edit message")
    expect(editor).to_be_focused()
    editor.fill("See you at 11")
    editor.press("Enter")
    for person in (alice, bob):
        expect(person.messages).to_have_text(["When do we meet?", "See you at 11"], timeout=WAIT_MS)
        expect(person.message("See you at 11").locator(".edited")).to_have_text("edited", timeout=WAIT_MS)
    expect(bob.room_button("Message actions").locator(".room-last")).to_have_text("See you at 11", timeout=WAIT_MS)

    # Deleting asks first; Cancel changes nothing.
    mine = alice.message("See you at 11")
    mine.hover()
    mine.get_by_role("button", name="Delete").click()
    dialog = alice.page.locator("#delete-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#delete-preview")).to_have_text("See you at 11")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(alice.messages).to_have_text(["When do we meet?", "See you at 11"])
    mine.hover()
    mine.get_by_role("button", name="Delete").click()
    alice.shot("delete-confirmation")
    dialog.get_by_role("button", name="Delete").click()

    for person in (alice, bob):
        expect(person.messages).to_have_text(["When do we meet?", "message deleted"], timeout=WAIT_MS)
        deleted = person.page.locator("#message-list .message.deleted")
        expect(deleted.locator(".edited, .reactions, button")).to_have_count(0)
    expect(bob.room_button("Message actions").locator(".room-last")).to_have_text("message deleted", timeout=WAIT_MS)
    assert alice.errors == bob.errors == []


def test_reactions_toggle_with_counts_that_the_other_person_sees_live(people):
    alice, bob = people
    room = do_create_room(1, NewRoom("Pizza", [2]))
    do_send_message(2, NewMessage(room.room_id, "Pizza tonight?", None))
    do_send_message(1, NewMessage(room.room_id, "Sure, at 8", None))
    both_in_room(alice, bob, "Pizza", "Sure, at 8")

    question = alice.message("Pizza tonight?")
    question.hover()
    question.get_by_role("button", name="Add reaction").click()
    question.get_by_role("button", name="React with 👍").click()
    expect(question.locator(".picker")).to_have_count(0)
    expect(question.locator(".reaction")).to_have_text(["👍 1"], timeout=WAIT_MS)
    expect(question.locator(".reaction")).to_have_attribute("aria-pressed", "true")

    seen_by_bob = bob.message("Pizza tonight?")
    expect(seen_by_bob.locator(".reaction")).to_have_text(["👍 1"], timeout=WAIT_MS)
    expect(seen_by_bob.locator(".reaction")).to_have_attribute("aria-pressed", "false")
    seen_by_bob.get_by_role("button", name="👍 1").click()
    for person in (alice, bob):
        thumbs = person.message("Pizza tonight?").locator(".reaction")
        expect(thumbs).to_have_text(["👍 2"], timeout=WAIT_MS)
    expect(seen_by_bob.locator(".reaction")).to_have_attribute("aria-pressed", "true")

    bob.message("Sure, at 8").hover()
    bob.message("Sure, at 8").get_by_role("button", name="Add reaction").click()
    bob.message("Sure, at 8").get_by_role("button", name="React with 🎉").click()
    expect(alice.message("Sure, at 8").locator(".reaction")).to_have_text(["🎉 1"], timeout=WAIT_MS)

    # Alice takes her thumbs-up back: one is left, Bob's.
    question.get_by_role("button", name="👍 2, yours").click()
    expect(seen_by_bob.locator(".reaction")).to_have_text(["👍 1"], timeout=WAIT_MS)
    expect(question.locator(".reaction")).to_have_attribute("aria-pressed", "false", timeout=WAIT_MS)
    alice.send("And we split the bill")
    expect(alice.page.locator("#composer-input")).to_have_value("", timeout=WAIT_MS)
    alice.page.locator("#composer-input").press("ArrowUp")
    alice.page.keyboard.press("End")
    alice.page.keyboard.type(" 🍕")
    alice.page.keyboard.press("Enter")
    expect(bob.message("And we split the bill 🍕").locator(".edited")).to_be_visible(timeout=WAIT_MS)
    alice.message("Sure, at 8").hover()
    alice.shot("message-actions")
    assert alice.errors == bob.errors == []


def test_message_actions_work_with_the_keyboard_alone(people):
    alice, bob = people
    room = do_create_room(1, NewRoom("Keys", [2]))
    do_send_message(2, NewMessage(room.room_id, "Ready?", None))
    do_send_message(1, NewMessage(room.room_id, "Almost", None))
    both_in_room(alice, bob, "Keys", "Almost")
    composer = alice.page.locator("#composer-input")
    composer.focus()

    # Up arrow in the empty composer edits the newest own message; Escape gives it back unchanged.
    alice.page.keyboard.press("ArrowUp")
    editor = alice.page.get_by_label("Edit message")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("Almost")
    alice.page.keyboard.type(" there")
    alice.page.keyboard.press("Escape")
    expect(alice.page.locator(".editor")).to_have_count(0)
    expect(composer).to_be_focused()
    expect(alice.messages).to_have_text(["Ready?", "Almost"])

    alice.page.keyboard.press("ArrowUp")
    alice.page.keyboard.type(" done")
    alice.page.keyboard.press("Enter")
    expect(bob.messages).to_have_text(["Ready?", "Almost done"], timeout=WAIT_MS)
    expect(composer).to_be_focused()

    # Back from the composer: Delete, Edit, then Add reaction of the newest message.
    for _ in range(6):
        alice.page.keyboard.press("Shift+Tab")
        if alice.page.evaluate("document.activeElement.dataset.action") == "pick-reaction":
            break
    add = alice.message("Almost done").get_by_role("button", name="Add reaction")
    expect(add).to_be_focused()
    alice.page.keyboard.press("Enter")
    expect(alice.page.get_by_role("button", name="React with 👍")).to_be_focused()
    alice.page.keyboard.press("Escape")
    expect(alice.page.locator(".picker")).to_have_count(0)
    expect(add).to_be_focused()
    alice.page.keyboard.press("Enter")
    alice.page.keyboard.press("ArrowRight")
    expect(alice.page.get_by_role("button", name="React with ❤️")).to_be_focused()
    alice.page.keyboard.press("Enter")
    expect(bob.message("Almost done").locator(".reaction")).to_have_text(["❤️ 1"], timeout=WAIT_MS)

    # Tab forward to Delete; Escape in the confirmation keeps the message.
    for _ in range(4):
        alice.page.keyboard.press("Tab")
        if alice.page.evaluate("document.activeElement.dataset.action") == "delete":
            break
    alice.page.keyboard.press("Enter")
    expect(alice.page.locator("#delete-dialog")).to_be_visible()
    alice.page.keyboard.press("Escape")
    expect(alice.page.locator("#delete-dialog")).to_be_hidden()
    expect(bob.messages).to_have_text(["Ready?", "Almost done"])
    alice.page.keyboard.press("Enter")
    alice.page.keyboard.press("Tab")
    expect(alice.page.locator("#delete-dialog").get_by_role("button", name="Delete")).to_be_focused()
    alice.page.keyboard.press("Enter")
    expect(bob.messages).to_have_text(["Ready?", "message deleted"], timeout=WAIT_MS)
    assert alice.errors == bob.errors == []


def test_search_finds_a_message_shows_its_room_and_opens_the_room_at_it(people):
    alice, _ = people
    trip = do_create_room(1, NewRoom("Trip planning", [2]))
    other = do_create_room(2, NewRoom("Paperwork", [1]))
    sent = [do_send_message(1, NewMessage(trip.room_id, "Remember the passport renewal", None))]
    # Enough newer messages that the found one is older than the first pages.
    sent += [do_send_message(2, NewMessage(trip.room_id, f"trip note {n:02d}", None)) for n in range(45)]
    sent.append(do_send_message(2, NewMessage(other.room_id, "Passport photos are ready", None)))
    ids = [message.message_id for message in sent]
    assert wait_for(lambda: SearchEntry.objects.filter(message_id__in=ids).count() == len(ids))
    alice.log_in("user1", "123")

    search = alice.page.get_by_role("searchbox", name="Search messages")
    search.fill("p")
    expect(alice.page.locator("#search-state")).to_have_text("Type at least 2 characters.", timeout=WAIT_MS)
    expect(alice.page.locator("#room-list")).to_be_hidden()
    search.fill("zebra crossing")
    expect(alice.page.locator("#search-state")).to_have_text("No messages found for “zebra crossing”.", timeout=WAIT_MS)
    search.fill("passport")
    results = alice.page.locator(".search-result")
    expect(results.locator(".room-name")).to_have_text(["Paperwork", "Trip planning"], timeout=WAIT_MS)
    expect(results.locator(".result-text")).to_have_text(
        ["Huỳnh Đặng Tấn Phát: Passport photos are ready", "You: Remember the passport renewal"]
    )

    results.filter(has_text="Trip planning").click()
    expect(alice.page.locator("#room-name")).to_have_text("Trip planning", timeout=WAIT_MS)
    found = alice.message("Remember the passport renewal")
    expect(found).to_have_class("message mine highlight", timeout=WAIT_MS)
    expect(found).to_be_focused()
    expect(found).to_be_in_viewport()
    alice.shot("search")

    search.press("Escape")
    expect(alice.page.locator("#search-view")).to_be_hidden()
    expect(alice.room_button("Trip planning")).to_be_visible()
    assert alice.errors == []


def test_a_delete_confirmed_after_reopening_the_dialog_at_once_still_deletes(people):
    """The first closing's close event arrives after the second opening: it must not take that one's message."""
    alice, bob = people
    room = do_create_room(1, NewRoom("Reopened", [2]))
    do_send_message(1, NewMessage(room.room_id, "Delete me twice", None))
    both_in_room(alice, bob, "Reopened", "Delete me twice")
    mine = alice.message("Delete me twice")
    mine.hover()
    delete = mine.get_by_role("button", name="Delete")
    delete.click()
    expect(alice.page.locator("#delete-dialog")).to_be_visible()
    # Closed and opened again in one task, so the close event is dispatched after the reopening.
    delete.evaluate("button => { document.getElementById('delete-dialog').close(); button.click(); }")
    dialog = alice.page.locator("#delete-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Delete").click()
    expect(bob.messages).to_have_text(["message deleted"], timeout=WAIT_MS)
    assert alice.errors == bob.errors == []

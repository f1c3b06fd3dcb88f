"""Driving the chat client in Debian's Chromium with Playwright: the browser and one person's window."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# Without the background-networking switches Chromium keeps calling home on a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# One step of a person's (a page update after a click or a message): a few hundred ms when
# all is well. Tests add up their steps' ceilings to fit their timeout marks.
WAIT_MS = 10_000


def chromium_path() -> str:
    return subprocess.run(
        [str(ROOT / "scripts" / "browser"), "path"], check=True, capture_output=True, text=True
    ).stdout.strip()


@contextlib.contextmanager
def launched_chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Person:
    """One person's browser window on the chat client."""

    def __init__(self, context: BrowserContext, base_url: str) -> None:
        self.context = context
        self.base_url = base_url
        self.page: Page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def log_in(self, username: str, password: str) -> Person:
        self.page.goto(self.base_url + "/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.locator("#chat-view")).to_be_visible(timeout=WAIT_MS)
        return self

    def room_button(self, name: str):
        return self.page.locator(".room-item", has_text=name)

    def open_room(self, name: str) -> None:
        self.room_button(name).click()
        expect(self.page.locator("#room-name")).to_have_text(name)

    def send(self, text: str) -> None:
        self.page.locator("#composer-input").fill(text)
        self.page.locator("#composer-input").press("Enter")

    @property
    def messages(self):
        return self.page.locator("#message-list .message .content")

    def message(self, text: str):
        """The message (its whole item: text, reactions, buttons) that shows this text."""
        return self.page.locator("#message-list .message", has=self.page.locator(".content", has_text=text))

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png")

"""The browser tests' running system and browsers: one stack and one Chromium for the whole package.

The stack is two daphne web processes, the relay, the projector and the pusher on the real
services; the first person's browser talks to one web process and the second's to the other,
so every push crosses Kafka and the Redis channel layer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from accounts.seed import seed_customers
from chat_command.models import OutboxEvent
from infrastructure.testing.waiting import wait_for
from realtime.tests.stack import Stack
from webui.tests.browser import Person, launched_chromium


@pytest.fixture(scope="package")
def stack(django_db_setup, django_db_blocker, kafka_bootstrap) -> Iterator[Stack]:
    ports = tuple(int(p) for p in os.environ.get("CHAT_UI_WEB_PORTS", "").split(",") if p)
    running = Stack().start(ports)
    yield running
    running.stop()


@pytest.fixture(scope="package")
def base_urls(stack) -> tuple[str, str]:
    front = os.environ.get("CHAT_UI_BASE_URL", "").rstrip("/")
    if front:
        return front, front
    first, second = stack.ports
    return f"http://127.0.0.1:{first}", f"http://127.0.0.1:{second}"


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread, which Django's ORM would
    # otherwise take for async code; the ORM calls here are the test's own, made between
    # browser calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with launched_chromium() as launched:
        yield launched
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def seeded_stack(stack, transactional_db, settings):
    # The web processes verify with the project's own hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    seed_customers()
    return stack


@pytest.fixture
def people(browser, base_urls, seeded_stack) -> Iterator[tuple[Person, Person]]:
    with windows(browser, base_urls, seeded_stack) as (first, second):
        yield first, second


@pytest.fixture
def three_people(browser, base_urls, seeded_stack) -> Iterator[tuple[Person, Person, Person]]:
    """The third person's browser talks to the first web process, the second's to the other."""
    with windows(browser, (base_urls[0], base_urls[1], base_urls[0]), seeded_stack) as (first, second, third):
        yield first, second, third


@contextlib.contextmanager
def windows(browser: Browser, urls: tuple[str, ...], stack: Stack) -> Iterator[tuple[Person, ...]]:
    """One browser window (a context of its own: its own cookie) per URL."""
    contexts = [browser.new_context(viewport={"width": 1100, "height": 720}) for _ in urls]
    try:
        yield tuple(Person(context, url) for context, url in zip(contexts, urls, strict=True))
    finally:
        for context in contexts:
            context.close()
        wait_until_the_roles_are_idle(stack)


def wait_until_the_roles_are_idle(stack: Stack) -> None:
    """The database is flushed after each test: a role mid-transaction could deadlock with it.

    The flush's TRUNCATE locks every table in turn; the relay (the outbox) and the projector (the
    search table, then what it reads) each take two of them in another order. So the relay has
    published everything, and the projector and the pusher have committed all of it.
    """
    from django.test import override_settings

    from infrastructure.messaging import consumers

    assert wait_for(lambda: not OutboxEvent.objects.filter(published_at__isnull=True).exists())
    with override_settings(KAFKA_GROUP_PREFIX=stack.prefix):
        assert wait_for(lambda: not any(consumers.lag_by_role().values()), interval=0.2), consumers.lag_by_role()

"""Sessions, CSRF, user authentication and flash messages, for the admin site only.

The API and the browser client authenticate with the JWT cookie and use none of the four.
Run for every request they cost about a tenth of a send command's time in Django, so this
middleware runs them, in Django's order, only for paths under ADMIN_PREFIX, and hands the
views there the CSRF check, which Django would otherwise only run for middleware it lists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

ADMIN_PREFIX = "/admin/"
ADMIN_STACK = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
)
# Django's admin checks look for these classes in MIDDLEWARE; they run here instead.
SILENCED_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]

ViewHook = Callable[..., HttpResponse | None]


class AdminOnlyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        handler = get_response
        self._view_hooks: list[ViewHook] = []
        for path in reversed(ADMIN_STACK):
            middleware = import_string(path)(handler)
            if hasattr(middleware, "process_view"):
                self._view_hooks.insert(0, middleware.process_view)
            handler = middleware
        self._admin = handler

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(ADMIN_PREFIX):
            return self._admin(request)
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        if not request.path_info.startswith(ADMIN_PREFIX):
            return None
        for hook in self._view_hooks:
            response = hook(request, view, args, kwargs)
            if response is not None:
                return response
        return None

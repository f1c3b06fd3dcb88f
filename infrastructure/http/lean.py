"""Endpoints that serve their common request without DRF's machinery, and every other through it.

DRF wraps each request, negotiates, authenticates, checks permissions, parses, handles errors
and renders. For the send command that machinery was about 0.15 ms of the 0.55 ms of CPU a
POST costs in-process (docs/benchmarks.md, "The api's request path, again"), while the send
itself needs only the cookie checked, the JSON body parsed and the answer rendered.

`@lean_api_view(methods)`, in place of `@api_view(methods)`, serves the common request itself: a
method the view takes, no query string, JSON accepted, a body that is UTF-8 JSON. It runs the
view's own authentication and permission classes, its exception handler and its renderer, and
adds the headers DRF adds, so the answer is the one DRF would give. Every other request (an
OPTIONS, another method, another content type, a body DRF's parser would refuse or read
differently, `?format=`, an Accept header to negotiate, a permission that refuses) goes to the
DRF view, which answers it as it always did. Nothing has run by then, so handing over is safe.
The tests put both paths side by side (infrastructure/tests/test_lean.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.json import strict_constant

from infrastructure.http.negotiation import takes_first

View = Callable[..., HttpResponse]


class LeanRequest:
    """What a view reads of a DRF Request: the parsed body, the caller, the headers and cookies."""

    def __init__(self, request: HttpRequest, data: Any) -> None:
        self.data = data
        self.user: Any = None
        self.auth: Any = None
        self.method = request.method
        self.headers = request.headers
        self.COOKIES = request.COOKIES
        self.META = request.META


def lean_api_view(methods: list[str]) -> Callable[[Callable[..., Any]], View]:
    """`@api_view(methods)` whose common request is served without DRF (see the module).

    The DRF view it makes answers every other request, and carries the view's OpenAPI
    description: `extend_schema` and the schema generator find it as `.cls`, as on any
    `@api_view`.
    """

    def decorate(function: Callable[..., Any]) -> View:
        drf_view = api_view(methods)(function)
        instance = drf_view.cls()
        if instance.throttle_classes or instance.versioning_class is not None:
            raise ImproperlyConfigured("lean_api_view does not throttle or version: leave such views to DRF")
        served = {m.upper() for m in methods}
        allow = ", ".join(instance.allowed_methods)
        renderer = instance.renderer_classes[0]()
        authenticators = [a() for a in instance.authentication_classes]
        permissions = [p() for p in instance.permission_classes]
        handler = cast(Callable[[Exception, dict[str, Any]], HttpResponse | None], api_settings.EXCEPTION_HANDLER)

        @functools.wraps(function)
        def serve(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            data = _common_body(request, served, renderer.media_type)
            if data is _NOT_COMMON:
                return drf_view(request, *args, **kwargs)
            call = LeanRequest(request, data)
            try:
                for authenticator in authenticators:
                    found = authenticator.authenticate(cast(Request, call))
                    if found is not None:
                        call.user, call.auth = found
                        break
                if not all(p.has_permission(cast(Request, call), instance) for p in permissions):
                    return drf_view(request, *args, **kwargs)  # DRF says why, as it always has
                response = function(call, *args, **kwargs)
            except Exception as exc:  # the view's exception handler decides, as under DRF
                response = handler(exc, {"view": instance, "args": args, "kwargs": kwargs, "request": call})
                if response is None:
                    raise
            return _finished(response, renderer, allow)

        # `cls` and `initkwargs` as on the DRF view, for extend_schema and the schema generator;
        # `drf_view` answers every request but the common one (and the tests compare the two).
        for name, value in (
            ("cls", drf_view.cls),
            ("initkwargs", getattr(drf_view, "initkwargs", {})),
            ("drf_view", drf_view),
            ("csrf_exempt", True),
        ):
            setattr(serve, name, value)
        return serve

    return decorate


_NOT_COMMON = object()


def _common_body(request: HttpRequest, methods: set[str], media_type: str) -> Any:
    """The parsed JSON body of a request DRF would answer in the common way; else _NOT_COMMON.

    Its negotiation ends at once with the view's first renderer, its body is UTF-8 JSON,
    read as DRF's JSON parser (strict: no NaN) reads it.
    """
    if request.method not in methods or not takes_first(request.META, media_type):
        return _NOT_COMMON
    charset = (request.content_params or {}).get("charset", "utf-8").lower()
    if request.content_type != "application/json" or charset not in ("utf-8", "utf8"):
        return _NOT_COMMON
    body = request.body  # over Django's upload limit, this raises what DRF's parser raises
    if not body:
        return _NOT_COMMON
    try:
        return json.loads(body.decode("utf-8"), parse_constant=strict_constant)
    except ValueError:  # not UTF-8, not JSON, or NaN and the like: DRF's parser says why
        return _NOT_COMMON


def _finished(response: HttpResponse, renderer: Any, allow: str) -> HttpResponse:
    """A view's answer as DRF finishes it: rendered by the view's first renderer, with Allow."""
    if isinstance(response, Response):
        response.accepted_renderer = renderer
        response.accepted_media_type = renderer.media_type
        response.renderer_context = {}  # type: ignore[attr-defined]  # DRF sets it as finalize_response does
        response.render()
    response["Allow"] = allow
    return response

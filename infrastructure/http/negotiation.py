"""Content negotiation with the common answer first.

Every endpoint renders JSON. DRF's negotiation parses the Accept header into media types and
ranks them for every request, about a twentieth of the api role's CPU on the send path. A
request that names no format and accepts anything, or exactly the first renderer's type, gets
what that parse would have given; every other request goes through DRF's own negotiation, so
`?format=`, lists, parameters and 406 answers stay DRF's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class FirstRendererNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> Any:
        renderers = list(renderers)
        if renderers and format_suffix is None and takes_first(request.META, renderers[0].media_type):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)


def takes_first(meta: dict[str, Any], media_type: str) -> bool:
    """Whether a request's negotiation ends with the first renderer's `media_type` at once: it
    has no query string (no `?format=`) and accepts anything, or exactly that type."""
    if meta.get("QUERY_STRING"):
        return False
    return meta.get("HTTP_ACCEPT", "*/*").strip() in ("*/*", media_type)

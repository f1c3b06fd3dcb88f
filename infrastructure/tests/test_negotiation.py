"""The negotiation's shortcut answers exactly as DRF's own negotiation does."""

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from infrastructure.http.negotiation import FirstRendererNegotiation

ACCEPTS = [
    None,
    "",
    "*/*",
    " */* ",
    "application/json",
    "application/json; indent=4",
    "application/json, text/plain, */*",
    "text/html",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/*",
    "image/png",
]


def chosen(negotiation, accept, query="", renderers=(JSONRenderer,)):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().post("/command/message" + query, **headers))
    try:
        renderer, media_type = negotiation.select_renderer(request, [r() for r in renderers])
    except (NotAcceptable, Http404) as refused:
        return type(refused).__name__
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api", "?x=1"])
@pytest.mark.parametrize("renderers", [(JSONRenderer,), (JSONRenderer, BrowsableAPIRenderer)])
def test_the_shortcut_chooses_what_drf_chooses(accept, query, renderers):
    ours = chosen(FirstRendererNegotiation(), accept, query, renderers)
    assert ours == chosen(DefaultContentNegotiation(), accept, query, renderers)


def test_the_api_renders_with_it():
    from rest_framework.settings import api_settings

    assert api_settings.DEFAULT_CONTENT_NEGOTIATION_CLASS is FirstRendererNegotiation

import ipaddress

import pytest
from django.test import RequestFactory

from infrastructure.http.net import client_address, client_scheme


def _request(remote: str, forwarded: str | None = None):
    request = RequestFactory().get("/auth/login", REMOTE_ADDR=remote)
    if forwarded:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return request


@pytest.fixture
def proxies_in_a_network(settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("172.29.0.0/24"), ipaddress.ip_network("127.0.0.1")]


@pytest.mark.usefixtures("proxies_in_a_network")
def test_it_believes_the_address_a_trusted_proxy_appended():
    assert client_address(_request("172.29.0.7", "198.51.100.1, 203.0.113.9")) == "203.0.113.9"
    assert client_address(_request("127.0.0.1", "203.0.113.10")) == "203.0.113.10"


@pytest.mark.usefixtures("proxies_in_a_network")
def test_it_ignores_forwarded_headers_from_anyone_else():
    assert client_address(_request("172.29.1.7", "203.0.113.9")) == "172.29.1.7"
    assert client_address(_request("203.0.113.50", "127.0.0.1")) == "203.0.113.50"


@pytest.mark.usefixtures("proxies_in_a_network")
def test_the_scheme_the_client_used_comes_from_a_trusted_proxy_only():
    assert client_scheme("http", "127.0.0.1", "https") == "https"
    assert client_scheme("http", "203.0.113.50", "https") == "http"
    assert client_scheme("https", "203.0.113.50", None) == "https"
    assert client_scheme("http", "127.0.0.1", None) == "http"

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request


def client_address(request: HttpRequest | Request) -> str:
    """The client's IP: REMOTE_ADDR, or the proxy's X-Forwarded-For when the proxy is trusted."""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    if forwarded and _is_trusted_proxy(remote):
        # The trusted proxy appends the address it saw; anything before it came from the client.
        return forwarded.split(",")[-1].strip()
    return remote


def client_scheme(scheme: str, remote: str, forwarded_proto: str | None) -> str:
    """The scheme the client used: the trusted proxy's X-Forwarded-Proto, else the one we were reached by."""
    if forwarded_proto and _is_trusted_proxy(remote):
        return forwarded_proto.split(",")[0].strip().lower()
    return scheme


def _is_trusted_proxy(remote: str) -> bool:
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in network for network in settings.TRUSTED_PROXIES)

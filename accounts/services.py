"""Use cases of the accounts app: check credentials, issue and revoke session tokens."""

from __future__ import annotations

from django.contrib.auth import authenticate

from accounts import throttle, tokens
from accounts.models import Customer
from chatproject.errors import LoginRejected
from realtime import api as realtime

# The reference's wording, which its browser client shows as is.
BAD_CREDENTIALS = "Tên đăng nhập hoặc mật khẩu không đúng."


def check_credentials(username: str, password: str, address: str) -> Customer:
    """Return the customer these credentials name, or raise; failures count toward a 429."""
    throttle.check_login_allowed(username, address)
    customer = authenticate(username=username, password=password)
    if not isinstance(customer, Customer):
        throttle.record_login_failure(username, address)
        raise LoginRejected(BAD_CREDENTIALS, code="bad_credentials")
    throttle.forget_login_failures(username)
    return customer


def session_token_for(customer: Customer) -> str:
    return tokens.issue_token(
        customer_id=customer.customer_id,
        username=customer.username,
        full_name=customer.full_name,
        roles=customer.roles,
    )


def end_session(token: str | None) -> None:
    """Revoke the token if it is still valid; an absent or invalid one needs nothing."""
    if not token:
        return
    try:
        principal = tokens.verify_token(token)
    except tokens.InvalidToken:
        return
    tokens.revoke(principal)
    realtime.end_sessions_of_token(principal.customer_id, principal.token_id)

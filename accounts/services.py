"""Use cases of the accounts app: check credentials, issue and revoke session tokens."""

from __future__ import annotations

import time

from django.contrib.auth import authenticate
from django.db import transaction

from accounts import signals, throttle, tokens
from accounts.models import Customer
from infrastructure.http.errors import LoginRejected

# The reference's wording, which its browser client shows as is.
BAD_CREDENTIALS = "Tên đăng nhập hoặc mật khẩu không đúng."


def check_credentials(username: str, password: str, address: str) -> Customer:
    """Return the customer these credentials name, or raise; failures count toward a 429."""
    throttle.check_and_count_login_attempt(username, address)
    try:
        customer = authenticate(username=username, password=password)
    except BaseException:
        throttle.uncount_login_attempt(username, address)
        raise
    if not isinstance(customer, Customer):
        raise LoginRejected(BAD_CREDENTIALS, code="bad_credentials")
    throttle.record_login_success(username, address)
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
    signals.token_revoked.send(sender=Customer, customer_id=principal.customer_id, token_id=principal.token_id)


def do_deactivate_customer(customer_id: int) -> None:
    """Deactivate the customer: login is refused, and so is every token they hold, as if each had
    logged out (reactivating does not bring those back); their live sessions close."""
    with transaction.atomic():
        # Tokens carry their issue time in whole seconds: refuse everything issued up to now.
        Customer.objects.filter(pk=customer_id).update(is_active=False, tokens_not_before=int(time.time()) + 1)
        transaction.on_commit(
            lambda: signals.customer_deactivated.send(
                sender=Customer, customer_id=customer_id, reason="The account was deactivated."
            )
        )

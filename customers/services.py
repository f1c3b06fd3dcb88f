"""Profile updates: validated in full before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import Customer
from customers.serializers import PHONE_SEPARATORS, ProfileChangeBody
from infrastructure.http.errors import BadRequest, NotFound

EMAIL_TAKEN = "Email already in use."
PHONE_TAKEN = "Phone number already in use."


@dataclass(frozen=True)
class ProfileChange:
    full_name: str
    email: str
    phone_number: str | None
    avatar_color: str


def check_profile_change(body: Any) -> ProfileChange:
    """Validate an update request body; raise BadRequest with a sentence a person can act on."""
    change = ProfileChangeBody.parse(body)
    phone = change["phoneNumber"]
    return ProfileChange(
        change["fullName"],
        change["email"],
        re.sub(PHONE_SEPARATORS, "", phone) if phone else None,
        change["avatarColor"].upper(),
    )


def do_update_profile(customer_id: int, change: ProfileChange) -> Customer:
    """Apply a validated change; uniqueness is the database's, so a race is a 400, never a 500."""
    others = Customer.objects.exclude(customer_id=customer_id)
    if others.filter(email__iexact=change.email).exists():
        raise BadRequest(EMAIL_TAKEN, code="email_taken")
    if change.phone_number and others.filter(phone_number=change.phone_number).exists():
        raise BadRequest(PHONE_TAKEN, code="phone_taken")
    try:
        with transaction.atomic():
            customer = Customer.objects.select_for_update().filter(customer_id=customer_id).first()
            if customer is None:
                raise NotFound("Customer not found or failed to update.")
            customer.full_name = change.full_name
            customer.email = change.email
            customer.phone_number = change.phone_number
            customer.avatar_color = change.avatar_color
            customer.save(update_fields=["full_name", "email", "phone_number", "avatar_color"])
    except IntegrityError as exc:
        raise BadRequest(_conflict_message(exc), code="conflict") from None
    return customer


def _conflict_message(exc: IntegrityError) -> str:
    text = str(exc)
    if "email" in text:
        return EMAIL_TAKEN
    if "phone" in text:
        return PHONE_TAKEN
    return "The profile conflicts with another customer."

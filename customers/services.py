"""Profile updates: validated in full before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts.models import Customer
from infrastructure.http.errors import BadRequest, NotFound

FULL_NAME_MAX = 100
EMAIL_MAX = 254
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
REQUIRED = "Full name, email, and avatar color are required."
EMAIL_TAKEN = "Email already in use."
PHONE_TAKEN = "Phone number already in use."


@dataclass(frozen=True)
class ProfileChange:
    full_name: str
    email: str
    phone_number: str | None
    avatar_color: str


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string.", code="invalid")
    return value.strip()


def check_profile_change(body: Any) -> ProfileChange:
    """Validate an update request body; raise BadRequest with a sentence a person can act on."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid")
    full_name, email, color = _text(body, "fullName"), _text(body, "email"), _text(body, "avatarColor")
    phone = _text(body, "phoneNumber") or None
    if not full_name or not email or not color:
        raise BadRequest(REQUIRED, code="required")
    if len(full_name) > FULL_NAME_MAX:
        raise BadRequest(f"Full name must be at most {FULL_NAME_MAX} characters.", code="too_long")
    try:
        validate_email(email)
    except ValidationError:
        raise BadRequest("Email is not a valid address.", code="invalid_email") from None
    if len(email) > EMAIL_MAX:
        raise BadRequest(f"Email must be at most {EMAIL_MAX} characters.", code="too_long")
    if not _COLOR.match(color):
        raise BadRequest("Avatar color must be a #RRGGBB hex colour, for example #4CAF50.", code="invalid_color")
    if phone is not None:
        phone = re.sub(r"[\s\-().]", "", phone)
        if not _PHONE.match(phone):
            raise BadRequest("Phone number must be 6 to 15 digits, optionally starting with +.", code="invalid_phone")
    return ProfileChange(full_name, email, phone, color.upper())


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

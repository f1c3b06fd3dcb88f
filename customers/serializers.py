"""Customer JSON in the reference's shape; what others may see is decided here, once. And the
/customer endpoints' bodies and answers, declared once for the checks and the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import Customer
from infrastructure.http.answers import envelope
from infrastructure.http.bodies import MISSING, SPACE, TYPE, WHITESPACE, Body, Text

PUBLIC = "public"
SEARCH = "search"


def mask_phone(phone: str | None) -> str | None:
    """Keep the last three digits, enough to tell two people apart and no more."""
    if not phone:
        return None
    return "•" * max(len(phone) - 3, 0) + phone[-3:]


def customer_json(customer: Customer, *, viewer_id: int, view: str = PUBLIC) -> dict[str, Any]:
    """The caller's own record is complete; another customer's email and username never leave."""
    own = customer.customer_id == viewer_id
    phone = customer.phone_number if own else mask_phone(customer.phone_number) if view == SEARCH else None
    return {
        "customerId": customer.customer_id,
        "username": customer.username if own else None,
        "password": None,
        "fullName": customer.full_name,
        "email": customer.email if own else None,
        "phoneNumber": phone,
        "avatarColor": customer.avatar_color,
        "roles": customer.roles,
    }


FULL_NAME_MAX = 100
EMAIL_MAX = 254
REQUIRED = "Full name, email, and avatar color are required."
# Before the digits are counted, whitespace, dashes, dots and brackets go: "(090) 123-4567".
PHONE_SEPARATORS = rf"[{WHITESPACE}().-]"


class ProfileChangeBody(Body):
    """The caller's new profile: every field is replaced; a blank or null phone clears it."""

    # The reference checks types first, then presence, then each field's format in this order.
    first = (TYPE, MISSING)

    fullName = Text(
        strip=True,
        max_length=FULL_NAME_MAX,
        error_messages={MISSING: REQUIRED, "too_long": f"Full name must be at most {FULL_NAME_MAX} characters."},
    )
    email = Text(
        strip=True,
        max_length=EMAIL_MAX,
        email=True,
        codes={"email": "invalid_email"},
        error_messages={
            MISSING: REQUIRED,
            "email": "Email is not a valid address.",
            "too_long": f"Email must be at most {EMAIL_MAX} characters.",
        },
    )
    avatarColor = Text(
        strip=True,
        pattern=rf"^{SPACE}*#[0-9A-Fa-f]{{6}}{SPACE}*$",
        codes={"pattern": "invalid_color"},
        error_messages={
            MISSING: REQUIRED,
            "pattern": "Avatar color must be a #RRGGBB hex colour, for example #4CAF50.",
        },
    )
    phoneNumber = Text(
        strip=True,
        required=False,
        pattern=rf"^{SPACE}*$|^{PHONE_SEPARATORS}*(?:\+{PHONE_SEPARATORS}*)?(?:[0-9]{PHONE_SEPARATORS}*){{6,15}}$",
        codes={"pattern": "invalid_phone"},
        error_messages={"pattern": "Phone number must be 6 to 15 digits, optionally starting with +."},
    )


class CustomerJson(serializers.Serializer):
    """`customer_json`: another customer's username and email are null, their phone masked or null."""

    customerId = serializers.IntegerField()
    username = serializers.CharField(allow_null=True)
    password = serializers.CharField(allow_null=True, help_text="Always null.")
    fullName = serializers.CharField()
    email = serializers.CharField(allow_null=True)
    phoneNumber = serializers.CharField(allow_null=True)
    avatarColor = serializers.CharField()
    roles = serializers.CharField()

    class Meta:
        ref_name = "Customer"


CustomerAnswer = envelope("CustomerAnswer", CustomerJson(), "One customer.")


CustomersAnswer = envelope(
    "CustomersAnswer", CustomerJson(many=True), "The customers found (possibly none), with their phones masked."
)


FullNameAnswer = envelope("FullNameAnswer", serializers.CharField(), "A customer's full name.")


class ServiceStatus(serializers.Serializer):
    """The reference's liveness answer, outside the envelope."""

    service = serializers.CharField()
    message = serializers.CharField()

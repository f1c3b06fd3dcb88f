"""Customer JSON in the reference's shape; what others may see is decided here, once."""

from __future__ import annotations

from typing import Any

from accounts.models import Customer

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

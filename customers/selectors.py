"""Reads of customer records."""

from __future__ import annotations

from accounts.models import Customer

SEARCH_MIN_LENGTH = 3
SEARCH_LIMIT = 20


def customer_by_id(customer_id: int) -> Customer | None:
    return Customer.objects.filter(customer_id=customer_id, is_active=True).first()


def search_by_phone(fragment: str) -> list[Customer]:
    query = Customer.objects.filter(is_active=True, phone_number__contains=fragment)
    return list(query.order_by("customer_id")[:SEARCH_LIMIT])


def search_by_full_name(fragment: str) -> list[Customer]:
    query = Customer.objects.filter(is_active=True, full_name__icontains=fragment)
    return list(query.order_by("customer_id")[:SEARCH_LIMIT])

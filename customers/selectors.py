"""Reads of customer records."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Customer

SEARCH_MIN_LENGTH = 3
SEARCH_LIMIT = 20


def customer_by_id(customer_id: int) -> Customer | None:
    return Customer.objects.filter(customer_id=customer_id, is_active=True).first()


def search_by_phone(fragment: str) -> list[Customer]:
    return _first(Customer.objects.filter(is_active=True, phone_number__contains=fragment), fragment)


def search_by_full_name(fragment: str) -> list[Customer]:
    return _first(Customer.objects.filter(is_active=True, full_name__icontains=fragment), fragment)


def _first(matches: QuerySet[Customer], fragment: str) -> list[Customer]:
    if "\x00" in fragment:
        return []  # no stored text holds NUL, and PostgreSQL refuses to compare with it
    return list(matches.order_by("customer_id")[:SEARCH_LIMIT])

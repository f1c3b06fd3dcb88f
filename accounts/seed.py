"""Demo customers: the reference's three (ids 1 to 3), and numbered ones for large demo data."""

from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.core.management.color import no_style
from django.db import connection, transaction

from accounts.models import Customer

SEED_CUSTOMERS = [
    (1, "user1", "123", "Vũ Thanh Hải", "vuhaipro2707@gmail.com", "0901234567", "#4CAF50"),
    (2, "user2", "1234", "Huỳnh Đặng Tấn Phát", "vuhaipro1234231@gmail.com", "0918765432", "#2196F3"),
    # The reference seeded "vuhaipro12342312.com", which is not an address.
    (3, "user3", "12345", "Nguyễn Anh Quốc", "vuhaipro12342312@gmail.com", "0987654321", "#FF9800"),
]


@transaction.atomic
def seed_customers() -> list[str]:
    """Create the missing demo customers with their fixed ids; return the usernames created."""
    created = []
    for customer_id, username, password, full_name, email, phone, color in SEED_CUSTOMERS:
        if Customer.objects.filter(username=username).exists():
            continue
        Customer.objects.create_user(
            username,
            password,
            customer_id=customer_id,
            full_name=full_name,
            email=email,
            phone_number=phone,
            avatar_color=color,
        )
        created.append(username)
    if created:
        # Explicit ids leave the identity sequence behind; move it past them.
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), [Customer]):
                cursor.execute(statement)
    return created


def demo_username(number: int) -> str:
    return f"demo{number}"


def seed_demo_customers(count: int, password: str) -> tuple[list[int], int]:
    """Make sure customers demo1..demo<count> exist; return their ids and how many were new.

    They share one password, hashed once: hashing it per customer would dominate large runs.
    """
    usernames = [demo_username(n) for n in range(1, count + 1)]
    existing = set(Customer.objects.filter(username__in=usernames).values_list("username", flat=True))
    hashed = make_password(password)
    created = Customer.objects.bulk_create(
        (
            Customer(
                username=username,
                password=hashed,
                full_name=f"Demo Customer {username.removeprefix('demo')}",
                email=f"{username}@demo.example",
            )
            for username in usernames
            if username not in existing
        ),
        batch_size=1000,
    )
    ids = list(Customer.objects.filter(username__in=usernames).values_list("customer_id", flat=True))
    return ids, len(created)

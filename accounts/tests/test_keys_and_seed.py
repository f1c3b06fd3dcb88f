import stat

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import CommandError, call_command
from django.test import override_settings

from accounts.models import Customer
from accounts.seed import seed_customers


def test_generate_keys_writes_a_2048_bit_pair_and_refuses_to_overwrite(tmp_path):
    private, public = tmp_path / "k" / "private.pem", tmp_path / "k" / "public.pem"
    with override_settings(JWT_PRIVATE_KEY_PATH=private, JWT_PUBLIC_KEY_PATH=public):
        call_command("generate_keys")
        first = private.read_bytes()
        assert first.startswith(b"-----BEGIN PRIVATE KEY-----")
        assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        assert serialization.load_pem_private_key(first, None).key_size == 2048
        with pytest.raises(CommandError, match="--force"):
            call_command("generate_keys")
        call_command("generate_keys", if_missing=True)
        assert private.read_bytes() == first
        call_command("generate_keys", force=True)
        assert private.read_bytes() != first


@pytest.mark.django_db
def test_seeding_creates_the_reference_customers_once():
    assert seed_customers() == ["user1", "user2", "user3"]
    assert seed_customers() == []
    rows = Customer.objects.filter(customer_id__in=[1, 2, 3]).order_by("customer_id")
    assert [(c.customer_id, c.username, c.phone_number) for c in rows] == [
        (1, "user1", "0901234567"),
        (2, "user2", "0918765432"),
        (3, "user3", "0987654321"),
    ]
    assert rows[2].email == "vuhaipro12342312@gmail.com"
    assert rows[0].check_password("123")
    fresh = Customer.objects.create_user("after-seed", "pw", full_name="A", email="after@example.test")
    assert fresh.customer_id > 3, "the id sequence moved past the seeded ids"

import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client

from accounts.models import Customer
from conftest import login

VALID = {"fullName": "Hải Vũ", "email": "hai@example.test", "phoneNumber": "0900000001", "avatarColor": "#123abc"}


def update(client, body):
    return client.post("/customer/info", body, content_type="application/json")


def test_own_info_is_the_complete_record(user1):
    response = user1.get("/customer/info")
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "Customer info retrieved successfully.",
        "data": {
            "customerId": 1,
            "username": "user1",
            "password": None,
            "fullName": "Vũ Thanh Hải",
            "email": "vuhaipro2707@gmail.com",
            "phoneNumber": "0901234567",
            "avatarColor": "#4CAF50",
            "roles": "ROLE_USER",
        },
    }


def test_own_info_of_a_deleted_customer_is_404(user1):
    Customer.objects.filter(customer_id=1).delete()
    assert user1.get("/customer/info").json() == {"success": False, "message": "Customer not found.", "data": None}


def test_an_update_is_saved_and_returned(user1):
    response = update(user1, VALID)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Customer info updated successfully."
    assert body["data"]["fullName"] == "Hải Vũ"
    assert body["data"]["avatarColor"] == "#123ABC"
    stored = Customer.objects.get(customer_id=1)
    assert (stored.email, stored.phone_number) == ("hai@example.test", "0900000001")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fullName": None}, "Full name, email, and avatar color are required."),
        ({"email": "   "}, "Full name, email, and avatar color are required."),
        ({"avatarColor": None}, "Full name, email, and avatar color are required."),
        ({"fullName": "x" * 101}, "Full name must be at most 100 characters."),
        ({"fullName": 42}, "fullName must be a string."),
        ({"email": "not-an-address"}, "Email is not a valid address."),
        ({"avatarColor": "red"}, "Avatar color must be a #RRGGBB hex colour, for example #4CAF50."),
        ({"avatarColor": "#12345"}, "Avatar color must be a #RRGGBB hex colour, for example #4CAF50."),
        ({"phoneNumber": "12ab"}, "Phone number must be 6 to 15 digits, optionally starting with +."),
        ({"email": "VUHAIPRO1234231@gmail.com"}, "Email already in use."),
        ({"phoneNumber": "0918765432"}, "Phone number already in use."),
    ],
)
def test_bad_updates_are_400_and_change_nothing(user1, change, message):
    response = update(user1, {**VALID, **change})
    assert response.status_code == 400
    assert response.json() == {"success": False, "message": message, "data": None}
    assert Customer.objects.get(customer_id=1).full_name == "Vũ Thanh Hải"


def test_a_profile_no_column_can_store_is_400_and_changes_nothing(user1):
    response = update(user1, {**VALID, "fullName": "nul \x00 inside"})
    assert response.status_code == 400
    assert response.json()["message"] == "fullName cannot contain NUL characters or unpaired surrogates."
    assert Customer.objects.get(customer_id=1).full_name == "Vũ Thanh Hải"


def test_a_body_that_is_not_an_object_is_400(user1):
    assert update(user1, ["x"]).status_code == 400


def test_null_phones_do_not_collide(user1, seeded):
    Customer.objects.filter(customer_id=2).update(phone_number=None)
    response = update(user1, {**VALID, "phoneNumber": None})
    assert response.status_code == 200
    assert response.json()["data"]["phoneNumber"] is None
    assert update(user1, {**VALID, "phoneNumber": ""}).status_code == 200


def test_the_database_enforces_case_insensitive_email_uniqueness(seeded):
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create_user("dup", "pw", full_name="D", email="VUHAIPRO2707@gmail.com")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_to_one_email_give_one_winner_and_a_400(unique):
    from accounts.seed import seed_customers

    seed_customers()
    clients = []
    for username, password in (("user1", "123"), ("user2", "1234")):
        client = Client(REMOTE_ADDR=f"127.9.{len(clients)}.1")
        login(client, username, password)
        clients.append(client)
    for round_number in range(8):
        email = f"race-{unique}-{round_number}@example.test"
        barrier = threading.Barrier(2)
        statuses: list[tuple[int, str]] = []

        def attempt(client, phone, email=email, barrier=barrier, statuses=statuses):
            barrier.wait()
            response = update(client, {**VALID, "email": email, "phoneNumber": phone})
            statuses.append((response.status_code, response.json()["message"]))
            connection.close()

        threads = [
            threading.Thread(target=attempt, args=(clients[0], f"09{round_number}1111111")),
            threading.Thread(target=attempt, args=(clients[1], f"09{round_number}2222222")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [(200, "Customer info updated successfully."), (400, "Email already in use.")]
        assert Customer.objects.filter(email=email).count() == 1

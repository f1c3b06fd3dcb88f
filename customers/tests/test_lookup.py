import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers.selectors import SEARCH_MIN_LENGTH
from customers.views import SEARCH_TEXT


def test_another_customer_by_id_hides_email_username_and_phone(user1):
    response = user1.get("/customer/info/customerId/2")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["customerId"] == 2
    assert data["fullName"] == "Huỳnh Đặng Tấn Phát"
    assert data["avatarColor"] == "#2196F3"
    assert (data["email"], data["username"], data["phoneNumber"], data["password"]) == (None, None, None, None)


def test_an_unknown_customer_is_404(user1):
    response = user1.get("/customer/info/customerId/999999")
    assert response.status_code == 404
    assert response.json() == {"success": False, "message": "Customer not found.", "data": None}


def test_full_name_lookup_returns_the_name_as_data(user1):
    assert user1.get("/customer/fullName/customerId/3").json() == {
        "success": True,
        "message": "Customer full name retrieved successfully.",
        "data": "Nguyễn Anh Quốc",
    }
    assert user1.get("/customer/fullName/customerId/999999").status_code == 404


def test_phone_search_matches_substrings_and_masks_other_peoples_numbers(user1):
    body = user1.get("/customer/info/phoneNumber/18765").json()
    assert body["message"] == "Customers retrieved successfully."
    assert [(c["customerId"], c["phoneNumber"], c["email"]) for c in body["data"]] == [(2, "•••••••432", None)]


def test_a_search_that_finds_the_caller_shows_their_own_record_in_full(user1):
    data = user1.get("/customer/info/phoneNumber/0901234").json()["data"]
    assert data[0]["customerId"] == 1
    assert data[0]["phoneNumber"] == "0901234567"
    assert data[0]["email"] == "vuhaipro2707@gmail.com"


def test_name_search_is_case_insensitive(user1):
    body = user1.get("/customer/info/fullName/NGUYỄN").json()
    assert [c["customerId"] for c in body["data"]] == [3]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/customer/info/phoneNumber/55555555", "No customers found matching phone number."),
        ("/customer/info/fullName/zzzqqq", "No customers found matching full name."),
    ],
)
def test_a_search_without_hits_is_an_empty_list(user1, url, message):
    assert user1.get(url).json() == {"success": True, "message": message, "data": []}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/customer/info/phoneNumber/090%00", "No customers found matching phone number."),
        ("/customer/info/fullName/V%C5%A9%00", "No customers found matching full name."),
    ],
)
def test_a_search_for_text_with_nul_finds_no_one(user1, url, message):
    assert user1.get(url).json() == {"success": True, "message": message, "data": []}


@pytest.mark.parametrize(
    "url", ["/customer/info/phoneNumber/09", "/customer/info/fullName/Ng", "/customer/info/fullName/%20a%20"]
)
def test_searches_need_three_characters(user1, url):
    response = user1.get(url)
    assert response.status_code == 400
    assert response.json()["message"] == "Search text must be at least 3 characters."


def test_searches_return_at_most_twenty(user1, unique):
    from accounts.models import Customer

    for n in range(25):
        Customer.objects.create_user(
            f"many-{unique}-{n}", "pw", full_name=f"Many {unique}", email=f"m{n}-{unique}@x.test"
        )
    assert len(user1.get(f"/customer/info/fullName/Many {unique}").json()["data"]) == 20


def test_the_service_test_endpoint_answers(user1):
    assert user1.get("/customer/test").json() == {
        "service": "customer-management-service",
        "message": "Customer Management Service is running.",
    }


@given(st.text(st.sampled_from(" \t\n\x1c\x85\u3000/aé0"), max_size=8))
def test_the_schema_of_search_text_accepts_what_a_search_accepts(text):
    # A slash ends the path segment, so the route never sees it; the search strips the rest.
    searchable = "/" not in text and len(text.strip()) >= SEARCH_MIN_LENGTH
    assert jsonschema_rs.validator_for({"type": "string", "pattern": SEARCH_TEXT.pattern}).is_valid(text) == searchable

"""Sessions, CSRF, authentication and messages run for the admin site and nowhere else."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Customer

pytestmark = pytest.mark.django_db


def test_the_admin_login_refuses_a_post_without_its_csrf_token(unique):
    Customer.objects.create_superuser(f"op-{unique}", "op-pw", email=f"op-{unique}@example.test")
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": f"op-{unique}", "password": "op-pw"})
    assert response.status_code == 403
    assert "sessionid" not in response.cookies


def test_the_admin_login_with_its_csrf_token_starts_a_session(unique):
    Customer.objects.create_superuser(f"op-{unique}", "op-pw", email=f"op-{unique}@example.test")
    client = Client(enforce_csrf_checks=True)
    page = client.get("/admin/login/")
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/admin/login/", {"username": f"op-{unique}", "password": "op-pw", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert "sessionid" in response.cookies
    assert client.get("/admin/").status_code == 200


def test_api_requests_get_no_session_csrf_or_message_machinery(seeded):
    client = Client(enforce_csrf_checks=True)
    login = client.post("/auth/login", {"username": "user1", "password": "123"}, content_type="application/json")
    assert login.status_code == 200
    answer = client.get("/query/rooms")
    assert answer.status_code == 200
    request = answer.wsgi_request
    assert not hasattr(request, "session")
    assert not hasattr(request, "_messages")
    assert set(answer.cookies) <= {"jwt_token"}


def test_views_under_the_admin_prefix_get_the_csrf_check_even_without_their_own_decorator(rf):
    from django.http import HttpResponse

    from chatproject.admin_middleware import AdminOnlyMiddleware

    def view(request):
        return HttpResponse("done")

    middleware = AdminOnlyMiddleware(lambda request: HttpResponse("done"))
    admin_post, api_post = rf.post("/admin/tools/purge"), rf.post("/command/message")
    for request in (admin_post, api_post):
        middleware(request)  # the request phase: the session and the CSRF secret for admin paths
    refused = middleware.process_view(admin_post, view, (), {})
    assert refused is not None
    assert refused.status_code == 403
    assert middleware.process_view(api_post, view, (), {}) is None

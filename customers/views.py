"""The /customer endpoints: thin transport over selectors and services."""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import caller
from accounts.models import Customer
from customers import selectors, services
from customers.serializers import (
    SEARCH,
    CustomerAnswer,
    CustomersAnswer,
    FullNameAnswer,
    ProfileChangeBody,
    ServiceStatus,
    customer_json,
)
from infrastructure.http.answers import answers
from infrastructure.http.bodies import SPACE, WHITESPACE
from infrastructure.http.errors import BadRequest, NotFound
from infrastructure.http.responses import ok

NOT_FOUND = "Customer not found."
# What a search needs: at least SEARCH_MIN_LENGTH characters once surrounding whitespace is
# dropped, and no slash (which would end the path segment).
SEARCH_TEXT = OpenApiParameter(
    "text",
    str,
    OpenApiParameter.PATH,
    pattern=rf"^{SPACE}*[^{WHITESPACE}/][^/]{{{selectors.SEARCH_MIN_LENGTH - 2},}}[^{WHITESPACE}/]{SPACE}*$",
    description=f"At least {selectors.SEARCH_MIN_LENGTH} characters besides surrounding whitespace.",
)


@extend_schema(methods=["GET"], responses=answers(CustomerAnswer, 404))
@extend_schema(methods=["POST"], request=ProfileChangeBody, responses=answers(CustomerAnswer, 404, body=True))
@api_view(["GET", "POST"])
def own_info(request: Request) -> Response:
    me = caller(request).customer_id
    if request.method == "POST":
        change = services.check_profile_change(request.data)
        customer = services.do_update_profile(me, change)
        return ok("Customer info updated successfully.", customer_json(customer, viewer_id=me))
    found = selectors.customer_by_id(me)
    if found is None:
        raise NotFound(NOT_FOUND)
    return ok("Customer info retrieved successfully.", customer_json(found, viewer_id=me))


@extend_schema(responses=answers(CustomerAnswer, 404, path=True))
@api_view(["GET"])
def info_by_id(request: Request, customer_id: int) -> Response:
    found = selectors.customer_by_id(customer_id)
    if found is None:
        raise NotFound(NOT_FOUND)
    return ok("Customer info retrieved successfully.", customer_json(found, viewer_id=caller(request).customer_id))


@extend_schema(responses=answers(FullNameAnswer, 404, path=True))
@api_view(["GET"])
def full_name_by_id(request: Request, customer_id: int) -> Response:
    found = selectors.customer_by_id(customer_id)
    if found is None:
        raise NotFound(NOT_FOUND)
    return ok("Customer full name retrieved successfully.", found.full_name)


def _search(request: Request, text: str, find: Callable[[str], list[Customer]], none_message: str) -> Response:
    text = text.strip()
    if len(text) < selectors.SEARCH_MIN_LENGTH:
        raise BadRequest(f"Search text must be at least {selectors.SEARCH_MIN_LENGTH} characters.", code="too_short")
    me = caller(request).customer_id
    found = [customer_json(c, viewer_id=me, view=SEARCH) for c in find(text)]
    return ok("Customers retrieved successfully." if found else none_message, found)


@extend_schema(parameters=[SEARCH_TEXT], responses=answers(CustomersAnswer, 400, path=True))
@api_view(["GET"])
def search_phone(request: Request, text: str) -> Response:
    return _search(request, text, selectors.search_by_phone, "No customers found matching phone number.")


@extend_schema(parameters=[SEARCH_TEXT], responses=answers(CustomersAnswer, 400, path=True))
@api_view(["GET"])
def search_full_name(request: Request, text: str) -> Response:
    return _search(request, text, selectors.search_by_full_name, "No customers found matching full name.")


@extend_schema(responses=answers(ServiceStatus))
@api_view(["GET"])
def service_test(request: Request) -> Response:
    return Response({"service": "customer-management-service", "message": "Customer Management Service is running."})

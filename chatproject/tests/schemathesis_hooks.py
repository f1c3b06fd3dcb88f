"""Schemathesis hooks for test_openapi_conformance (loaded through SCHEMATHESIS_HOOKS).

A schema describes what a well-formed request is, not which customers and messages exist or
which idempotency keys a caller has already used. The contract answers these refusals of
well-formed requests with 400, where schemathesis expects 404 or 409 (positive_data_acceptance),
so they are dropped, as are the refusals of a rule JSON Schema cannot state; the run's summary
counts them. Any other 400 to a schema-valid request is
still a failure.
"""

from __future__ import annotations

import re

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

STATE_DEPENDENT_REFUSALS = [
    # Only the seeded customers 1-3 exist, and the caller (1) may not name themself.
    ("POST", "/command/room", r"Unknown customer ids: [0-9, ]+\."),
    ("POST", "/command/room", r"targetCustomerIds should not contain the creator's customerId\."),
    ("POST", "/command/room/{room_id}/participants", r"Unknown customer ids: [0-9, ]+\."),
    # A read marker must name a message of the room.
    ("POST", "/command/read", r"Message [0-9]+ is not a message of Room [0-9]+\."),
    # An idempotency key stays bound to the room of its first send; the header and the body may
    # both carry one only if they agree (JSON Schema cannot relate a header to the body).
    ("POST", "/command/message", r"This idempotency key was already used for another room\."),
    ("POST", "/command/message", r"The Idempotency-Key header and clientMessageId differ\."),
    # "One emoji" is one grapheme cluster holding an emoji character: no JSON Schema pattern says that.
    *(
        (method, "/command/message/{message_id}/reactions/{emoji}", r"emoji must be one emoji or a short name .*")
        for method in ("PUT", "DELETE")
    ),
]


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure but a 400 that names a state-dependent refusal of this operation."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400:
        return True
    message = response.json().get("message", "")
    return not any(
        case.method.upper() == method and case.path == path and re.fullmatch(pattern, message)
        for method, path, pattern in STATE_DEPENDENT_REFUSALS
    )

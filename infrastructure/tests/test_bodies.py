"""Request bodies declared once: what a declaration tells the OpenAPI schema is what its checks
accept, and its refusals keep the reference's messages and order."""

from __future__ import annotations

import re
import sys

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_command.serializers import IDEMPOTENCY_KEY, NewMessageBody, NewRoomBody, ReadMarkerBody
from customers.serializers import ProfileChangeBody
from infrastructure.http.bodies import BIGINT_MAX, MISSING, WHITESPACE, Body, Id, Ids, Invalid, Text
from infrastructure.http.errors import BadRequest

BODIES = [NewRoomBody, NewMessageBody, ReadMarkerBody, ProfileChangeBody]
# Every Text the API checks, but for email, whose schema leaves the address's syntax to "format".
TEXTS = [
    pytest.param(field, id=f"{body.__name__}.{name}")
    for body in BODIES
    for name, field in body._declared_fields.items()
    if isinstance(field, Text) and not field.email
] + [pytest.param(IDEMPOTENCY_KEY, id="Idempotency-Key")]

TRICKY = list(" \t\n\x0b\x0c\r\x1c\x1f\x85\xa0\u2028\u3000\ufeff\x00#+()-.09aAfF")
# Unpaired surrogates are no JSON Schema string (test_text_no_column_can_store_is_refused has them).
TEXT = st.text(st.sampled_from(TRICKY) | st.characters(exclude_categories=["Cs"]), max_size=120)


def accepted_by_check(field: Text, value: str) -> bool:
    try:
        field.check(value, {})
    except Invalid as error:
        return error.rule == MISSING and not field.required
    return True


def accepted_by_schema(field: Text, value: str) -> bool:
    # The validator schemathesis uses: its regular expressions are not Python's (\\s, for one).
    return jsonschema_rs.validator_for(field.json_schema()).is_valid(value)


def test_the_schemas_whitespace_is_what_python_strips():
    declared = re.compile(f"[{WHITESPACE}]")
    characters = [chr(c) for c in range(sys.maxunicode + 1)]
    assert [c for c in characters if declared.fullmatch(c)] == [c for c in characters if c.isspace()]


@pytest.mark.parametrize("field", TEXTS)
@given(value=TEXT)
def test_a_texts_schema_accepts_exactly_what_its_check_accepts(field, value):
    assert accepted_by_schema(field, value) == accepted_by_check(field, value)


@pytest.mark.parametrize("field", TEXTS)
def test_a_text_of_the_longest_length_is_accepted_and_one_more_character_is_not(field):
    longest = field.max_length or 30
    for value in ("x" * longest, f"  {'x' * longest} "):
        assert accepted_by_check(field, value) == accepted_by_schema(field, value)
    too_long = "x" * (longest + 1)
    assert accepted_by_check(field, too_long) == accepted_by_schema(field, too_long)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [(1, True), (BIGINT_MAX, True), (0, False), (-1, False), (BIGINT_MAX + 1, False), (True, False), ("1", False)],
)
def test_an_id_is_a_whole_number_a_bigint_holds(value, accepted):
    schema = Id().json_schema()
    assert (schema["minimum"], schema["maximum"]) == (1, BIGINT_MAX)
    try:
        Id().check(value, {})
    except Invalid:
        assert not accepted
    else:
        assert accepted


@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b"])
def test_text_no_column_can_store_is_refused(text):
    with pytest.raises(BadRequest) as refused:
        NewMessageBody.parse({"roomId": 1, "content": text})
    assert refused.value.message == "content cannot contain NUL characters or unpaired surrogates."


@pytest.mark.parametrize(
    ("body", "kwargs", "message"),
    [
        # The reference checks for the creator before an empty list, the rest are ours.
        (NewRoomBody, {"roomName": "R", "targetCustomerIds": [1, 1]}, "should not contain the creator's customerId."),
        (NewRoomBody, {"roomName": "x" * 101, "targetCustomerIds": []}, "roomName must be at most 100 characters."),
        (NewRoomBody, {"roomName": 5, "targetCustomerIds": "x"}, "roomName and targetCustomerIds cannot be empty."),
        # A missing field comes first, whichever field it is.
        (NewMessageBody, {"roomId": "1"}, "roomId and content cannot be empty."),
        (NewMessageBody, {"roomId": "1", "content": 5}, "roomId must be a positive whole number."),
        # The profile checks types first, then presence.
        (ProfileChangeBody, {"fullName": 42, "avatarColor": "red"}, "fullName must be a string."),
        (ProfileChangeBody, {"fullName": "x" * 101, "avatarColor": "red"}, "email, and avatar color are required."),
    ],
)
def test_of_several_broken_rules_the_first_the_reference_checks_is_reported(body, kwargs, message):
    with pytest.raises(BadRequest) as refused:
        body.parse(kwargs, creator=1)
    assert refused.value.message.endswith(message)


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(BadRequest) as refused:
        ReadMarkerBody.parse([1, 2])
    assert refused.value.message == "The request body must be a JSON object."


def test_a_declaration_says_what_it_checks_in_the_schema():
    class Example(Body):
        ids = Ids(max_items=3, excluding="caller")
        note = Text(strip=True, max_length=10, required=False)

    assert Example.parse({"ids": [2, 3]}, caller=1) == {"ids": [2, 3], "note": None}
    assert Ids(max_items=3).json_schema() == {
        "type": "array",
        "items": Id().json_schema(),
        "minItems": 1,
        "maxItems": 3,
        "uniqueItems": True,
    }

"""Request bodies declared once, as DRF serializers whose fields both check a value and describe it.

`Body.parse` checks a JSON body with the declared fields and answers the first broken rule with
the reference's message (a 400 in the GenericResponse envelope); drf-spectacular renders the same
fields into the OpenAPI schema (`json_schema`). The fields are strict, as JSON Schema is: "1" is
not an integer and 5 is not a string. `parse` walks the fields itself instead of running DRF's
`is_valid`, which costs some forty times as much on the send path (60 microseconds a body) and
collects every error where the reference answers with one.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from infrastructure.http.errors import BadRequest

BIGINT_MAX = 2**63 - 1
NOT_AN_OBJECT = "The request body must be a JSON object."

MISSING = "missing"  # absent, null or empty: the rule every field checks first
TYPE = "type"
# The X-Error-Code a broken rule sends is the rule's name, unless a field or this says otherwise.
CODES = {
    MISSING: "required",
    TYPE: "invalid",
    "too_large": "invalid",
    "caller": "invalid",
    "empty_list": "required",
    "unstorable": "invalid",
}


class Invalid(Exception):
    """A value breaks the field rule `rule`; `params` fill in the rule's message."""

    def __init__(self, rule: str, **params: Any) -> None:
        super().__init__(rule)
        self.rule = rule
        self.params = params


class StrictField(serializers.Field):
    """A strict field: `check` returns the value to use or raises Invalid. `error_messages`
    (DRF's) hold each rule's message; `codes` the X-Error-Code of a rule, where it differs."""

    default_error_messages = {MISSING: "{field} is required."}

    def __init__(self, *, codes: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.codes = codes or {}

    def check(self, value: Any, context: dict[str, Any]) -> Any:
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def refusal(self, name: str, error: Invalid) -> BadRequest:
        message = str(self.error_messages[error.rule]).format(field=name, **error.params)
        return BadRequest(message, code=self.codes.get(error.rule) or CODES.get(error.rule, error.rule))


class Id(StrictField):
    """A database id: a JSON integer from 1 to the largest bigint."""

    default_error_messages = {
        TYPE: "{field} must be a positive whole number.",
        "too_large": f"{{field}} must be at most {BIGINT_MAX}.",
    }

    def check(self, value: Any, context: dict[str, Any]) -> int:
        # type() rather than isinstance(): true and false are not ids.
        if type(value) is not int or value < 1:
            raise Invalid(TYPE)
        if value > BIGINT_MAX:
            raise Invalid("too_large")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "format": "int64", "minimum": 1, "maximum": BIGINT_MAX}


class Ids(StrictField):
    """A list of distinct ids, in the order given; with `excluding`, never the id the context
    holds under that name (the caller's own, say)."""

    default_error_messages = {
        TYPE: "{field} must be a list of ids.",
        "caller": "{field} must not contain the caller's id.",
        "empty_list": "{field} cannot be empty.",
        "duplicate": "{field} contains duplicate ids: {ids}.",
        "too_many": "{field} can hold at most {max_items} ids.",
    }

    def __init__(self, *, max_items: int, excluding: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_items = max_items
        self.excluding = excluding

    def check(self, value: Any, context: dict[str, Any]) -> list[int]:
        if type(value) is not list or not all(type(i) is int and 0 < i <= BIGINT_MAX for i in value):
            raise Invalid(TYPE)
        if self.excluding is not None and context.get(self.excluding) in value:
            raise Invalid("caller")
        if not value:
            raise Invalid("empty_list")
        duplicates = sorted({i for i in value if value.count(i) > 1})
        if duplicates:
            raise Invalid("duplicate", ids=", ".join(str(i) for i in duplicates))
        if len(value) > self.max_items:
            raise Invalid("too_many", max_items=self.max_items)
        return value

    def json_schema(self) -> dict[str, Any]:
        schema = {
            "type": "array",
            "items": Id().json_schema(),
            "minItems": 1,
            "maxItems": self.max_items,
            "uniqueItems": True,
        }
        if self.excluding is not None:
            schema["description"] = f"Must not contain the {self.excluding}'s own id."
        return schema


# Exactly what str.isspace() and str.strip() take for whitespace, written out for the schema:
# JSON Schema's \s is ECMAScript's, which leaves out U+001C-U+001F and U+0085.
WHITESPACE = r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SPACE = f"[{WHITESPACE}]"
# Neither whitespace nor NUL, which no text column can hold.
VISIBLE = rf"[^{WHITESPACE}\x00]"
STORABLE = r"[^\x00]"


class Text(StrictField):
    """A JSON string a text column can store (no NUL, no unpaired surrogate).

    With `strip`, surrounding whitespace is dropped before anything else: a blank value counts
    as missing and `max_length` counts what is left. Without it, the value is kept as sent: ""
    is missing and whitespace alone is `blank`. `pattern` is a regular expression the whole raw
    value must match, written into the schema as it is: say whitespace with SPACE, not \\s.
    """

    default_error_messages = {
        TYPE: "{field} must be a string.",
        "blank": "{field} cannot be blank.",
        "pattern": "{field} is not in the expected format.",
        "email": "{field} is not a valid address.",
        "too_long": "{field} must be at most {max_length} characters.",
        "unstorable": "{field} cannot contain NUL characters or unpaired surrogates.",
    }

    def __init__(
        self,
        *,
        strip: bool,
        max_length: int | None = None,
        pattern: str | None = None,
        email: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if pattern is not None and max_length is not None:
            raise ValueError("a Text with a pattern says its length in the pattern")
        if not strip and not kwargs.get("required", True):
            raise ValueError("an optional Text strips: a blank value is then simply left out")
        self.strip = strip
        self.max_length = max_length
        self.pattern = pattern
        self.matches = re.compile(pattern).search if pattern else None
        self.email = email

    def check(self, value: Any, context: dict[str, Any]) -> str | None:
        if type(value) is not str:
            raise Invalid(TYPE)
        text = value.strip() if self.strip else value
        if not text:
            raise Invalid(MISSING)
        if not self.strip and text.isspace():
            raise Invalid("blank")
        if self.matches is not None and not self.matches(value):
            raise Invalid("pattern")
        if self.email and not _is_email(text):
            raise Invalid("email")
        if self.max_length is not None and len(text) > self.max_length:
            raise Invalid("too_long", max_length=self.max_length)
        if "\x00" in value or not (value.isascii() or _encodable(value)):
            raise Invalid("unstorable")
        return text

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "pattern": self.pattern or self._pattern()}
        if not self.strip and self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.email:
            schema["format"] = "email"
        return schema

    def _pattern(self) -> str:
        """What the checks accept, for the schema."""
        if not self.strip or self.max_length is None:
            return f"^{STORABLE}*{VISIBLE}{STORABLE}*$" if self.required else f"^{STORABLE}*$"
        # At most max_length characters from the first visible one to the last.
        inner = VISIBLE if self.max_length == 1 else f"{VISIBLE}(?:{STORABLE}{{0,{self.max_length - 2}}}{VISIBLE})?"
        return f"^{SPACE}*{inner}{SPACE}*$" if self.required else f"^{SPACE}*(?:{inner})?{SPACE}*$"


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # an unpaired surrogate, which "\ud800" in JSON decodes to
        return False
    return True


def _is_email(text: str) -> bool:
    try:
        validate_email(text)
    except ValidationError:
        return False
    return True


class Body(serializers.Serializer):
    """A JSON object body; subclasses declare its fields in the order the reference checks them.

    `first` names the rules that outrank field order: by default a missing field is reported
    before anything else, as the reference does ("roomId and content cannot be empty.").
    """

    first: ClassVar[tuple[str, ...]] = (MISSING,)
    _checks: ClassVar[list[tuple[str, StrictField]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = getattr(cls, "_declared_fields", {})
        cls._checks = [(name, field) for name, field in fields.items() if isinstance(field, StrictField)]

    @classmethod
    def parse(cls, data: Any, **context: Any) -> dict[str, Any]:
        """The checked values by field name (None for an optional field left out); BadRequest
        with the message of the first broken rule otherwise."""
        if not isinstance(data, dict):
            raise BadRequest(NOT_AN_OBJECT, code="invalid")
        values: dict[str, Any] = {}
        broken: tuple[int, str, StrictField, Invalid] | None = None
        for name, field in cls._checks:
            value = data.get(name)
            error = None
            if value is not None:
                try:
                    values[name] = field.check(value, context)
                    continue
                except Invalid as invalid:
                    error = invalid
            if (error is None or error.rule == MISSING) and not field.required:
                values[name] = None
                continue
            error = error or Invalid(MISSING)
            rank = cls.first.index(error.rule) if error.rule in cls.first else len(cls.first)
            if broken is None or rank < broken[0]:
                broken = (rank, name, field, error)
        if broken is not None:
            _, name, field, error = broken
            raise field.refusal(name, error)
        return values


class FieldSchema(OpenApiSerializerFieldExtension):
    """Describes every strict field in the OpenAPI schema by its own `json_schema`."""

    target_class = StrictField
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = self.target.json_schema()
        if not self.target.required:
            schema["nullable"] = True
        return schema

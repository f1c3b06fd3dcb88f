"""Typed event schemas, their registry, and the envelope they travel in.

Every record on the bus is `{"eventId", "type", "version", "occurredAt", "payload"}` where the
payload keeps the reference's field names. Apps declare their events with `@event_type`;
`decode` refuses, by name, anything whose type is unknown or whose payload does not match.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import json
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from infrastructure.timeutil import iso, now_ms


class MalformedEvent(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Event:
    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]
    VERSION: ClassVar[int] = 1
    # Every record is keyed by its room, so one room's events keep their order.
    KEY_FIELD: ClassVar[str] = "roomId"

    roomId: int

    def key(self) -> str:
        return str(getattr(self, self.KEY_FIELD))

    @classmethod
    def key_of(cls, payload: dict[str, Any]) -> str:
        """The key of the event with these fields."""
        return str(payload[cls.KEY_FIELD])

    def fields(self) -> dict[str, Any]:
        """Every field by name. Shallow: events are frozen values, and asdict's deep copy of
        every field was a measurable part of each send."""
        return {name: getattr(self, name) for name in _fields_of(type(self))[0]}

    def payload(self) -> dict[str, Any]:
        """The fields as recorded and sent: a field added later (one with a default) only when
        it differs from its default, so an event that does not use it reads as it always did."""
        names, defaults = _fields_of(type(self))
        payload = {name: getattr(self, name) for name in names}
        for name, default in defaults:
            if payload[name] == default:
                del payload[name]
        return payload


_FIELDS: dict[type, tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]] = {}


def _fields_of(cls: type[Event]) -> tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]:
    """The event type's field names, and the defaulted ones with their defaults."""
    known = _FIELDS.get(cls)
    if known is None:
        fields = dataclasses.fields(cls)
        defaults = tuple(
            (f.name, f.default if f.default_factory is dataclasses.MISSING else f.default_factory())
            for f in fields
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        known = _FIELDS[cls] = (tuple(f.name for f in fields), defaults)
    return known


_registry: dict[str, type[Event]] = {}
E = TypeVar("E", bound=type[Event])


def event_type(cls: E) -> E:
    if cls.TYPE in _registry and _registry[cls.TYPE] is not cls:
        raise RuntimeError(f"event type {cls.TYPE} is declared twice")
    _registry[cls.TYPE] = cls
    return cls


def registered_types() -> dict[str, type[Event]]:
    return dict(_registry)


@dataclasses.dataclass(frozen=True)
class Envelope:
    event_id: str
    type: str
    version: int
    occurred_at: str
    payload: dict[str, Any]
    # The HTTP request that caused the event, when one did (additive: absent otherwise).
    request_id: str | None = None

    @classmethod
    def wrap(cls, event: Event, request_id: str | None = None) -> Envelope:
        return cls.new(type(event), event.payload(), request_id)

    @classmethod
    def new(cls, event_type: builtins.type[Event], payload: dict[str, Any], request_id: str | None = None) -> Envelope:
        """A fresh envelope (new id, occurring now) for an event of `event_type` with this payload."""
        return cls(str(uuid.uuid4()), event_type.TYPE, event_type.VERSION, iso(now_ms()), payload, request_id)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "eventId": self.event_id,
            "type": self.type,
            "version": self.version,
            "occurredAt": self.occurred_at,
            "payload": self.payload,
        }
        if self.request_id is not None:
            data["requestId"] = self.request_id
        return data

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()

    def event(self) -> Event:
        return self._event

    @functools.cached_property
    def _event(self) -> Event:
        # Decoding validates the event; the consumer asks for it again: build it once.
        return _event_from(self.type, self.version, self.payload)


_SIMPLE: dict[Any, Any] = {int: int, str: str, bool: bool, float: (int, float)}


def _checker(expected: Any) -> Callable[[Any], bool]:
    """A test that a decoded JSON value fits the annotation `expected`."""
    if expected is Any:
        return lambda value: True
    if expected is type(None):
        return lambda value: value is None
    origin = typing.get_origin(expected)
    if origin is typing.Union or origin is types.UnionType:
        alternatives = [_checker(arg) for arg in typing.get_args(expected)]
        return lambda value: any(fits(value) for fits in alternatives)
    if expected is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    kind = _SIMPLE.get(expected, origin or expected)
    return lambda value: isinstance(value, kind)


@functools.cache
def _schema(
    type_name: str,
) -> tuple[tuple[tuple[str, Any, Callable[[Any], bool]], ...], frozenset[str], frozenset[str]]:
    """Each field's name, type and test, the field names, and the names every payload must
    have: resolving the hints costs more than a decode, so it is done once per type.

    A field with a default was added after the event type was first recorded: a payload from
    before it (an older writer, or the outbox replayed by a rebuild) may lack it.
    """
    cls = _registry[type_name]
    hints = typing.get_type_hints(cls)
    fields = tuple((f.name, hints[f.name], _checker(hints[f.name])) for f in dataclasses.fields(cls))
    required = frozenset(
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    return fields, frozenset(name for name, _, _ in fields), required


def _event_from(type_name: str, version: int, payload: Any) -> Event:
    cls = _registry.get(type_name)
    if cls is None:
        raise MalformedEvent(f"unknown event type {type_name!r}")
    if version != cls.VERSION:
        raise MalformedEvent(f"{type_name} version {version} is not supported (expected {cls.VERSION})")
    if not isinstance(payload, dict):
        raise MalformedEvent(f"{type_name} payload must be an object")
    checks, fields, required = _schema(type_name)
    missing, extra = required - payload.keys(), payload.keys() - fields
    if missing or extra:
        raise MalformedEvent(
            f"{type_name} payload fields differ: missing {sorted(missing)}, unexpected {sorted(extra)}"
        )
    for name, expected, fits in checks:
        if name in payload and not fits(payload[name]):
            raise MalformedEvent(f"{type_name}.{name} must be {expected}, got {type(payload[name]).__name__}")
    return cls(**payload)


def _request_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("requestId must be a string")
    return value


def decode(raw: bytes | str) -> tuple[Envelope, Event]:
    """Parse and validate one record; raise MalformedEvent naming what is wrong."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedEvent("an event must be a JSON object")
    try:
        envelope = Envelope(
            event_id=str(data["eventId"]),
            type=str(data["type"]),
            version=int(data["version"]),
            occurred_at=str(data["occurredAt"]),
            payload=data["payload"],
            request_id=_request_id(data.get("requestId")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(f"envelope field missing or invalid: {exc}") from None
    return envelope, envelope.event()

"""The answers endpoints share, declared once for the OpenAPI schema: the reference's GenericResponse
envelope and the error bodies errors.py renders ({"success": false, ...} from the services,
{"detail": ...} from the gateway)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers


# OpenAPI 3.0 has no null type: nothing but the null that `nullable` adds matches `not: {}`.
@extend_schema_field({"nullable": True, "not": {}, "description": "Always null."})
class Null(serializers.Field):
    """A key the reference always sends, always null."""


class Envelope(serializers.Serializer):
    """The reference's GenericResponse; `envelope` adds its data."""

    success = serializers.BooleanField()
    message = serializers.CharField()


def envelope(name: str, data: serializers.Field, description: str) -> type[Envelope]:
    """The GenericResponse whose data is `data`, as the schema's component `name`.

    Built with type(): a field declared as `data` in a class body would shadow Serializer.data
    for the type checker (DRF itself takes declared fields off the class).
    """
    return type(name, (Envelope,), {"__doc__": description, "data": data})


Refusal = envelope("Refusal", Null(), "A service's refusal: success false, a message a person can act on, data null.")


class GatewayError(serializers.Serializer):
    """An error of the reference's gateway: authentication, or no such route."""

    detail = serializers.CharField()


NO_ROUTE_OR_REFUSAL = PolymorphicProxySerializer(
    component_name="NotFound",
    serializers=[Refusal, GatewayError],
    resource_type_field_name=None,
)

REFUSED = {
    400: "The request breaks a rule; the message says which.",
    403: "The caller is not a participant of the room (for a message's edit or deletion: not its sender).",
    404: "No such resource.",
    409: "The resource's state forbids it (a deleted message, or a message with too many reactions).",
}
UNAUTHENTICATED = OpenApiResponse(GatewayError, "No jwt_token cookie, or one that is invalid, expired or ended.")
UNAVAILABLE = OpenApiResponse(Refusal, "A datastore is unreachable for now; the request may be retried.")
NOT_JSON = OpenApiResponse(Refusal, "The body is not JSON.")
NO_ROUTE = "The path does not name an endpoint (an id that is not a whole number, say)."


def answers(ok: Any, *refused: int, body: bool = False, path: bool = False) -> dict[int, Any]:
    """An authenticated endpoint's answers: `ok` (200), the refusals it makes, and what any such
    endpoint may answer: 401 and 503; 400 and 415 for a body (`body`); 404 for a path parameter
    that fits no route (`path`)."""
    responses: dict[int, Any] = {200: ok, 401: UNAUTHENTICATED, 503: UNAVAILABLE}
    if body:
        responses |= {400: OpenApiResponse(Refusal, REFUSED[400]), 415: NOT_JSON}
    for status in refused:
        responses[status] = OpenApiResponse(Refusal, REFUSED[status])
    if path:
        not_found = 404 in refused
        responses[404] = OpenApiResponse(
            NO_ROUTE_OR_REFUSAL if not_found else GatewayError, f"{REFUSED[404]} {NO_ROUTE}" if not_found else NO_ROUTE
        )
    return responses

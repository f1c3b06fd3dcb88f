import json
from typing import Any

from django.http import HttpResponse
from rest_framework.response import Response


def ok(message: str, data: Any = None) -> Response:
    """The reference's GenericResponse envelope for a success."""
    return Response({"success": True, "message": message, "data": data})


def ok_rendered(message: str, items: list[str]) -> HttpResponse:
    """`ok` around a list whose items are already JSON (`render`ed, as the read cache keeps them)."""
    body = f'{{"success":true,"message":{render(message)},"data":[{",".join(items)}]}}'
    return HttpResponse(body.encode(), content_type="application/json")


def render(value: Any) -> str:
    """JSON as the API's renderer writes it: compact, UTF-8, with U+2028/2029 escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")

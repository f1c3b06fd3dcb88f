from typing import Any

from rest_framework.response import Response


def ok(message: str, data: Any = None) -> Response:
    """The reference's GenericResponse envelope for a success."""
    return Response({"success": True, "message": message, "data": data})

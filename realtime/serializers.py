"""The online-status endpoint's answer, declared once for the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers

from infrastructure.http.answers import envelope


class OnlineStatus(serializers.Serializer):
    """Whether a participant is online."""

    customerId = serializers.IntegerField()
    online = serializers.BooleanField()


OnlineStatusesAnswer = envelope(
    "OnlineStatusesAnswer",
    OnlineStatus(many=True, help_text="One entry per participant, in the room's order."),
    "Who in the room is online.",
)

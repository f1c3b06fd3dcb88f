"""Reads of the realtime app: who is online."""

from __future__ import annotations

from typing import Any

from chat_command import selectors as truth
from realtime import presence


def online_statuses(room_id: int) -> list[dict[str, Any]]:
    participants = truth.participant_ids(room_id)
    online = presence.online_ids(participants)
    return [{"customerId": p, "online": p in online} for p in participants]

"""The command side's Python API for the apps above it."""

from __future__ import annotations

from chat_command.selectors import is_participant, message_states
from chat_command.services import not_a_participant

__all__ = ["message_states", "require_participant"]


def require_participant(room_id: int, customer_id: int) -> None:
    """Refuse (403, in the reference's words) a customer who is not in the room."""
    if not is_participant(room_id, customer_id):
        raise not_a_participant(customer_id, room_id)

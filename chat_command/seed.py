from __future__ import annotations

from chat_command.models import Room
from chat_command.services import NewRoom, do_create_room


def seed_rooms() -> list[str]:
    """Create room 1 "Direct Chat 1-2" for customers 1 and 2 through the normal path, once."""
    if Room.objects.exists():
        return []
    room = do_create_room(1, NewRoom("Direct Chat 1-2", [2]))
    return [room.room_name]

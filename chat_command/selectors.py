"""Reads of the source of truth that other apps need (membership is never read from a projection)."""

from __future__ import annotations

from chat_command.models import RoomParticipant


def is_participant(room_id: int, customer_id: int) -> bool:
    return RoomParticipant.objects.filter(room_id=room_id, customer_id=customer_id).exists()


def participant_ids(room_id: int) -> list[int]:
    rows = RoomParticipant.objects.filter(room_id=room_id).order_by("position")
    return list(rows.values_list("customer_id", flat=True))


def room_ids_of(customer_id: int) -> list[int]:
    return list(RoomParticipant.objects.filter(customer_id=customer_id).values_list("room_id", flat=True))

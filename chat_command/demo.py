"""Large demo data written the way commands write it, so every projection follows.

Rooms go through `do_create_room`. Messages take a bulk path: many messages of one room in one
transaction, with one MessageSent each in the outbox, so the relay and the projector see
exactly what sending them one by one would have produced, in a fraction of the time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from django.db import transaction

from chat_command import outbox, sending
from chat_command.events import MessageSent
from chat_command.models import Message, Room
from chat_command.serializers import ROOM_PARTICIPANTS_MAX
from chat_command.services import NewRoom, do_create_room
from customers import api as customers
from infrastructure.timeutil import iso, now_ms

WORDS = (
    "hello there when are we meeting tomorrow the build is green again lunch at noon sounds good I pushed the fix",
    "please review coffee first then standup can you share the slides thanks",
)

_VOCABULARY = " ".join(WORDS).split()


def demo_content(rng: random.Random) -> str:
    return " ".join(rng.choices(_VOCABULARY, k=rng.randint(3, 14))).capitalize() + "."


def do_create_demo_rooms(
    customer_ids: Sequence[int], count: int, room_size: int, rng: random.Random, tick: Callable[[], None]
) -> list[Room]:
    """Create `count` rooms of `room_size` random demo customers each, through the room command."""
    if count and not 2 <= room_size <= min(len(customer_ids), ROOM_PARTICIPANTS_MAX):
        raise ValueError(f"room size must be between 2 and {min(len(customer_ids), ROOM_PARTICIPANTS_MAX)}")
    rooms = []
    for number in range(1, count + 1):
        creator, *targets = rng.sample(list(customer_ids), room_size)
        rooms.append(do_create_room(creator, NewRoom(f"Demo room {number}", targets)))
        tick()
    return rooms


def do_send_demo_messages(room: Room, senders: Sequence[int], count: int, rng: random.Random) -> list[int]:
    """Store `count` messages in `room` from random `senders`, with their MessageSent events."""
    names = customers.full_names(senders)
    with transaction.atomic():
        # Serialise with live sends to this room: message ids and outbox order must agree.
        Room.objects.select_for_update().filter(room_id=room.room_id).get()
        sent_at = now_ms()
        first = sending.next_seq(room.room_id)
        messages = Message.objects.bulk_create(
            Message(
                room_id=room.room_id,
                sender_id=rng.choice(senders),
                content=demo_content(rng),
                sent_at=sent_at,
                seq=first + n,
            )
            for n in range(count)
        )
        outbox.record(
            *(
                MessageSent(
                    roomId=room.room_id,
                    messageId=message.message_id,
                    senderId=message.sender_id,
                    senderFullName=names[message.sender_id],
                    content=message.content,
                    sentAt=iso(sent_at),
                    seq=message.seq,
                )
                for message in messages
            )
        )
    return [message.message_id for message in messages]

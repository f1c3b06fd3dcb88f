import random
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.seed import seed_demo_customers
from chat_command.demo import do_create_demo_rooms, do_send_demo_messages
from chat_command.serializers import ROOM_PARTICIPANTS_MAX
from infrastructure.progress import progress_bar


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


class Command(BaseCommand):
    help = (
        "Seed large demo data: customers demo1..demoN (safe to run twice), then new rooms and messages,"
        " written with their outbox events so the read model and clients follow."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=_count, default=100, help="demo customers to have (default 100)")
        parser.add_argument("--rooms", type=_count, default=20, help="new rooms to create (default 20)")
        parser.add_argument(
            "--messages", type=_count, default=None, help="new messages spread over those rooms (default 50 per room)"
        )
        parser.add_argument("--room-size", type=int, default=5, help="participants per room (default 5)")
        parser.add_argument("--password", default="demo", help="password of the demo customers (default demo)")
        parser.add_argument("--batch", type=int, default=1000, help="messages per transaction (default 1000)")
        parser.add_argument("--random-seed", type=int, default=None, help="repeatable choices of members and text")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args: Any, **options: Any) -> None:
        customers, rooms, messages = options["customers"], options["rooms"], options["messages"]
        if messages is None:
            messages = 50 * rooms
        room_size, batch, show = options["room_size"], options["batch"], not options["no_progress"]
        if rooms and not 2 <= room_size <= min(customers, ROOM_PARTICIPANTS_MAX):
            raise CommandError(
                f"--room-size must be between 2 and {min(customers, ROOM_PARTICIPANTS_MAX)}"
                f" (at most --customers and {ROOM_PARTICIPANTS_MAX}), got {room_size}."
            )
        if messages and not rooms:
            raise CommandError("--messages needs --rooms: messages go into the rooms this run creates.")
        if batch < 1:
            raise CommandError(f"--batch must be at least 1, got {batch}.")
        rng = random.Random(options["random_seed"])
        started = time.perf_counter()

        ids, created = seed_demo_customers(customers, options["password"])
        self.stdout.write(f"Demo customers: {len(ids)} ({created} new), password {options['password']!r}.")

        with progress_bar(rooms, "rooms", "room", enabled=show) as bar:
            new_rooms = do_create_demo_rooms(ids, rooms, room_size, rng, lambda: bar.update(1))
        sent = 0
        with progress_bar(messages, "messages", "msg", enabled=show) as bar:
            for index, room in enumerate(new_rooms):
                # Spread the messages evenly; the first rooms take the remainder.
                share = messages // len(new_rooms) + (1 if index < messages % len(new_rooms) else 0)
                members = list(room.participants.values_list("customer_id", flat=True))
                for offset in range(0, share, batch):
                    done = len(do_send_demo_messages(room, members, min(batch, share - offset), rng))
                    sent += done
                    bar.update(done)
        seconds = time.perf_counter() - started
        self.stdout.write(f"Rooms created: {len(new_rooms)}; messages sent: {sent}; in {seconds:.1f} s.")

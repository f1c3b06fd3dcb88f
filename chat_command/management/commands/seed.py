from typing import Any

from django.core.management.base import BaseCommand

from accounts.seed import seed_customers
from chat_command.seed import seed_rooms


class Command(BaseCommand):
    help = "Create the demo data (customers 1-3, room 1); safe to run twice."

    def handle(self, *args: Any, **options: Any) -> None:
        customers = seed_customers()
        rooms = seed_rooms()
        self.stdout.write(f"Customers created: {', '.join(customers) or 'none (already seeded)'}.")
        self.stdout.write(f"Rooms created: {', '.join(rooms) or 'none (already seeded)'}.")

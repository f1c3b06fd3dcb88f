from typing import Any

from django.core.management.base import BaseCommand

from accounts.seed import seed_customers


class Command(BaseCommand):
    help = "Create the demo data (customers 1-3); safe to run twice."

    def handle(self, *args: Any, **options: Any) -> None:
        created = seed_customers()
        self.stdout.write(f"Customers created: {', '.join(created) or 'none (already seeded)'}.")

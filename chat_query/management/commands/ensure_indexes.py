from typing import Any

from django.core.management.base import BaseCommand

from chat_query.store import active_store


class Command(BaseCommand):
    help = "Create the read model's indexes (the projector also does this when it starts)."

    def handle(self, *args: Any, **options: Any) -> None:
        active_store(fresh=True).ensure_indexes()
        self.stdout.write("Indexes are in place.")

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chat_query.rebuild import rebuild


class Command(BaseCommand):
    help = "Replay the event log into fresh read-model collections and switch readers to them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, no_progress: bool, **options: Any) -> None:
        generation, count, seconds = rebuild(progress=not no_progress)
        rate = count / seconds if seconds else 0
        self.stdout.write(f"Rebuilt generation {generation}: {count} events in {seconds:.1f} s ({rate:.0f} events/s).")

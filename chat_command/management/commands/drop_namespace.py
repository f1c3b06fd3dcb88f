from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from infrastructure.namespace import DropIncomplete, drop


class Command(BaseCommand):
    help = (
        "Delete everything a namespace holds on the configured Kafka and Redis: topics `<ns>.*`,"
        " consumer groups `<ns>.*`, Redis keys `<ns>:*`. Stop the namespace's processes first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("namespace", help="a namespace as in CHAT_NAMESPACE; the empty one is refused")

    def handle(self, *args: Any, namespace: str, **options: Any) -> None:
        try:
            dropped = drop(namespace)
        except (ValueError, DropIncomplete) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Dropped namespace {namespace!r}: {dropped['topics']} Kafka topics,"
            f" {dropped['groups']} consumer groups, {dropped['keys']} Redis keys."
        )

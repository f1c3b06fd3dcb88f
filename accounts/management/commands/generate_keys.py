from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.keys import KeysExist, generate_key_pair


class Command(BaseCommand):
    help = "Generate the RS256 key pair that signs and verifies session tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--force", action="store_true", help="Replace existing keys (logs everyone out).")
        group.add_argument("--if-missing", action="store_true", help="Do nothing when both keys exist.")

    def handle(self, *args: Any, force: bool, if_missing: bool, **options: Any) -> None:
        private, public = settings.JWT_PRIVATE_KEY_PATH, settings.JWT_PUBLIC_KEY_PATH
        if if_missing and private.exists() and public.exists():
            return
        try:
            generate_key_pair(private, public, force=force)
        except KeysExist as exc:
            raise CommandError(f"Keys already exist ({exc}); pass --force to replace them.") from None
        self.stdout.write(f"Wrote {private} and {public}.")

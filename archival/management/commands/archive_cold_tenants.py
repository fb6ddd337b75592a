"""Request archives for cold tenants idle past ARCHIVE_COLD_AFTER_DAYS (what the beat sweep does)."""

from typing import Any

from django.core.management.base import CommandParser

from archival import services
from core.commands import PlatformCommand, cli_actor


class Command(PlatformCommand):
    help = "Archive cold tenants idle longer than ARCHIVE_COLD_AFTER_DAYS, oldest first, in a bounded batch."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list the tenants, change nothing")
        parser.add_argument("--limit", type=int, default=100)
        parser.add_argument("--days", type=int, default=None, help="override ARCHIVE_COLD_AFTER_DAYS")

    def handle(self, *args: Any, **opts: Any) -> None:
        ids = services.sweep_cold_tenants(
            limit=opts["limit"],
            dry_run=opts["dry_run"],
            older_than_days=opts["days"],
            actor=cli_actor(),
        )
        for tenant_id in ids:
            self.stdout.write(f"{'would archive' if opts['dry_run'] else 'archive requested'}: {tenant_id}")
        self.stdout.write(f"{len(ids)} tenant(s){' (dry run)' if opts['dry_run'] else ''}")

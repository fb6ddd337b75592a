"""Re-wrap every tenant data key under the configured master key (after PLATFORM_MASTER_KEY changed)."""

from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from backups import rekey
from core.commands import PlatformCommand, cli_actor


class Command(PlatformCommand):
    help = (
        "Re-wrap tenant keys still wrapped by a previous master key (PLATFORM_MASTER_KEY_PREVIOUS) under the current "
        "PLATFORM_MASTER_KEY. Archives are untouched; resumable; safe beside live traffic."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=rekey.DEFAULT_BATCH)
        parser.add_argument("--dry-run", action="store_true", help="count what would be re-wrapped")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        pending = rekey.keys_to_rewrap()
        total = sum(pending.values())
        for master_id, n in sorted(pending.items()):
            self.stdout.write(f"{n} keys wrapped by master key {master_id}")
        if opts["dry_run"] or not total:
            self.stdout.write(f"{total} keys to re-wrap")
            return
        with tqdm(total=total, desc="re-wrapping tenant keys", unit="key", file=self.stderr._out) as bar:
            result = rekey.master_key_rewrap(actor=cli_actor(), batch_size=opts["batch_size"], progress=bar.update)
        self.stdout.write(f"{result.rewrapped} keys re-wrapped, {result.remaining} left")
        if result.remaining:
            raise CommandError(f"{result.remaining} keys are still under an old master key; run the command again")

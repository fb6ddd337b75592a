"""`manage.py stripe_reconcile [--since DATE]`: feed the events Stripe holds that we never stored to the pipeline."""

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from billing.reconcile import reconcile
from core.commands import PlatformCommand


def parse_since(value: str) -> datetime:
    try:
        since = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CommandError(f"invalid --since: {value!r} (expected a date or time, e.g. 2026-12-01)") from None
    return since if since.tzinfo else since.replace(tzinfo=UTC)


class Command(PlatformCommand):
    help = "List Stripe's events since the last run (or --since) and process the ones never received."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="ISO date or time (UTC unless given); default: where the last run ended")

    def handle(self, *args: Any, **options: Any) -> None:
        since = parse_since(options["since"]) if options["since"] else None
        stream = getattr(self.stderr, "_out", self.stderr)
        with tqdm(unit="events", file=stream, disable=options["verbosity"] == 0, mininterval=0.5) as bar:
            result = reconcile(since=since, progress=bar.update)
        self.stdout.write(
            f"listed {result.listed} events from {result.since:%Y-%m-%d %H:%M:%S} to {result.until:%Y-%m-%d %H:%M:%S}"
            f" UTC; {len(result.fed)} missing, fed to the pipeline; {len(result.refused)} refused"
        )
        for line in result.refused[:20]:
            self.stdout.write(f"  refused {line}")

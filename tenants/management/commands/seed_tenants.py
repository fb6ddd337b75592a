"""`manage.py seed_tenants --count N [--batch 50000]`: bulk-load synthetic tenants (COPY on PostgreSQL)."""

from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from core.commands import PlatformCommand, cli_actor
from tenants.seeding import DEFAULT_BATCH, DEFAULT_WORKERS, analyze_tables, tenants_seed


def _positive_int(name: str, value: object) -> int:
    try:
        number = int(str(value).replace("_", ""))
    except ValueError:
        raise CommandError(f"invalid {name}: {value!r} (expected a positive integer)") from None
    if number < 1:
        raise CommandError(f"invalid {name}: {value!r} (expected a positive integer)")
    return number


class Command(PlatformCommand):
    help = "Insert N synthetic tenants with states (PostgreSQL COPY in batches; bulk inserts on other databases)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", required=True, help="how many tenants to create")
        parser.add_argument(
            "--batch", default=str(DEFAULT_BATCH), help=f"rows per transaction (default {DEFAULT_BATCH})"
        )
        parser.add_argument(
            "--workers", default=str(DEFAULT_WORKERS), help=f"concurrent COPY connections (default {DEFAULT_WORKERS})"
        )
        parser.add_argument("--seed", type=int, default=None, help="random seed for reproducible tiers and states")

    def handle(self, *args: Any, **options: Any) -> None:
        count = _positive_int("count", options["count"])
        batch = _positive_int("batch", options["batch"])
        workers = _positive_int("workers", options["workers"])
        stream = getattr(self.stderr, "_out", self.stderr)
        with tqdm(
            total=count,
            unit="tenants",
            unit_scale=True,
            file=stream,
            disable=options["verbosity"] == 0,
            dynamic_ncols=True,
            mininterval=0.5,
        ) as bar:
            result = tenants_seed(
                count=count,
                batch_size=batch,
                workers=workers,
                seed=options["seed"],
                actor=cli_actor(),
                progress=bar.update,
            )
        analyze_tables()
        batches = f"{result.batches} batch{'es' if result.batches != 1 else ''}"
        self.stdout.write(
            f"seeded {result.count} tenants in {result.seconds:.1f}s ({result.rate_per_s:,.0f} tenants/s, "
            f"{batches}, {result.method}); emails seed-<n>-{result.run_token}@example.com"
        )

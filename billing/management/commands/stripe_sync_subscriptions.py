"""`manage.py stripe_sync_subscriptions`: compare every Stripe subscription with its row and repair differences."""

from typing import Any

from django.core.management.base import CommandError
from tqdm import tqdm

from billing.reconcile import sync_subscriptions
from core.commands import PlatformCommand


class Command(PlatformCommand):
    help = "Compare every subscription with Stripe's and repair the rows and tiers that differ."

    def handle(self, *args: Any, **options: Any) -> None:
        stream = getattr(self.stderr, "_out", self.stderr)
        with tqdm(unit="subscriptions", file=stream, disable=options["verbosity"] == 0, mininterval=0.5) as bar:
            result = sync_subscriptions(progress=bar.update)
        self.stdout.write(
            f"checked {result.checked} subscriptions: {len(result.repaired)} repaired, "
            f"{len(result.unknown)} without a tenant yet, {len(result.failed)} failed"
        )
        for sub_id in result.repaired[:50]:
            self.stdout.write(f"  repaired {sub_id}")
        for line in (result.unknown + result.failed)[:50]:
            self.stdout.write(f"  {line}")
        if result.failed:
            raise CommandError(f"{len(result.failed)} subscriptions could not be repaired (listed above)")

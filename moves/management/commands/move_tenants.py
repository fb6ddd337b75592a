"""Move many tenants: `manage.py move_tenants --from C --to B --limit N [--reason TEXT] [--no-wait]`."""

import time
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from core.commands import PlatformCommand, cli_actor
from moves.models import MoveStatus
from moves.selectors import moves_by_id
from moves.services import tenants_move_many


class Command(PlatformCommand):
    help = "Start tier moves for up to N tenants of one tier, follow them with a progress bar, print a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="from_tier", required=True, help="the tier to move tenants from")
        parser.add_argument("--to", dest="to_tier", required=True, help="the tier to move them to")
        parser.add_argument("--limit", type=int, required=True, help="at most this many tenants (oldest first)")
        parser.add_argument("--reason", default="", help="recorded on each move and in the audit log")
        parser.add_argument("--no-wait", action="store_true", help="start the moves and return")
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for them (default 3600)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        started, refused = tenants_move_many(
            from_tier=options["from_tier"],
            to_tier=options["to_tier"],
            limit=options["limit"],
            actor=cli_actor(),
            reason=options["reason"],
        )
        for line in refused:
            self.stderr.write(f"refused {line}")
        ids = [m.id for m in started]
        counts = {status: 0 for status in MoveStatus.values}
        if not options["no_wait"] and ids:
            deadline = time.monotonic() + options["timeout"]
            with tqdm(total=len(ids), desc="moving tenants", unit="tenant", file=self.stderr._out) as bar:
                while True:
                    counts = self.count(ids)
                    finished = counts[MoveStatus.COMPLETED] + counts[MoveStatus.ROLLED_BACK]
                    bar.update(finished - bar.n)
                    if finished == len(ids) or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
        else:
            counts = self.count(ids)
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        self.stdout.write(f"{len(ids)} moves started ({summary or 'none'}), {len(refused)} refused")
        if counts[MoveStatus.ROLLED_BACK]:
            raise CommandError(f"{counts[MoveStatus.ROLLED_BACK]} moves rolled back (see the move list in the admin)")

    @staticmethod
    def count(ids: list) -> dict[str, int]:
        counts = {status: 0 for status in MoveStatus.values}
        for status in moves_by_id(ids).values_list("status", flat=True):
            counts[status] += 1
        return counts

"""Move one tenant to another tier: `manage.py move_tenant TENANT --tier A [--reason TEXT] [--wait]`."""

import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from core.commands import PlatformCommand, cli_actor
from moves.models import Move, MoveStatus
from moves.services import tenant_move
from tenants.selectors import resolve_tenant_id


def describe(move: Move) -> str:
    return f"move {move.id} ({move.from_tier} -> {move.to_tier}): {move.status}, step {move.step}"


class Command(PlatformCommand):
    help = "Move a tenant (id or email) to another tier; --wait follows the move's steps until it ends."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", metavar="TENANT_ID_OR_EMAIL")
        parser.add_argument("--tier", required=True, help="the new tier: A, B or C")
        parser.add_argument("--reason", default="", help="recorded on the move and in the audit log")
        parser.add_argument("--wait", action="store_true", help="print each step as the task reaches it, until done")
        parser.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits (default 600)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant_id = resolve_tenant_id(options["tenant"])
        move = tenant_move(tenant_id=tenant_id, tier=options["tier"], actor=cli_actor(), reason=options["reason"])
        self.stdout.write(describe(move))
        if options["wait"]:
            move = self.follow(move, options["timeout"])
        if move.status == MoveStatus.ROLLED_BACK:
            raise CommandError(f"move {move.id} rolled back at step {move.failed_step}: {move.error}")

    def follow(self, move: Move, timeout: float) -> Move:
        """Poll the row (the task runs in a worker, or at commit when tasks run eagerly) and print each new step."""
        deadline = time.monotonic() + timeout
        seen = (move.status, move.step)
        while move.finished_at is None:
            if time.monotonic() > deadline:
                raise CommandError(f"move {move.id} still {move.status} after {timeout:g}s (step {move.step})")
            time.sleep(0.1)
            move.refresh_from_db()
            if (move.status, move.step) != seen:
                seen = (move.status, move.step)
                self.stdout.write(describe(move))
        if move.status == MoveStatus.COMPLETED and move.duration_ms is not None:
            self.stdout.write(f"done in {move.duration_ms} ms: the tenant is on tier {move.to_tier}")
        return move

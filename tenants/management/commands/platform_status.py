"""`manage.py platform_status`: tenants by tier and status, by tier and state, and the recent archival jobs."""

from collections import defaultdict
from typing import Any

from django.core.management.base import CommandParser

from archival.models import ArchivalJob
from core.commands import PlatformCommand
from tenants.models import State, TenantStatus, Tier
from tenants.selectors import tenant_counts


def _table(title: str, columns: list[str], counts: list[tuple[str, str, int]]) -> list[str]:
    """A tier-by-column grid with row and column totals."""
    grid: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    extra = [c for _, c, _ in counts if c not in columns]
    columns = columns + sorted(set(extra))
    for tier, column, n in counts:
        grid[tier][column] += n
    tiers = list(Tier.values) + sorted(t for t in grid if t not in Tier.values)
    width = max([len(c) for c in columns] + [len("total"), 8]) + 2
    lines = [title, "tier".ljust(6) + "".join(c.rjust(width) for c in [*columns, "total"])]
    for tier in tiers:
        row = [grid[tier][c] for c in columns]
        lines.append(tier.ljust(6) + "".join(str(n).rjust(width) for n in [*row, sum(row)]))
    totals = [sum(grid[t][c] for t in tiers) for c in columns]
    lines.append("all".ljust(6) + "".join(str(n).rjust(width) for n in [*totals, sum(totals)]))
    return lines


def recent_archival_jobs(limit: int = 10) -> list[ArchivalJob]:
    return list(
        ArchivalJob.objects.select_related("tenant")
        .only("id", "job_type", "status", "attempts", "error_message", "created_at", "completed_at", "tenant__email")
        .order_by("-created_at", "-id")[:limit]
    )


class Command(PlatformCommand):
    help = "Show tenants by tier and status, by tier and state, and the most recent archival jobs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--jobs", type=int, default=10, help="how many recent archival jobs to show (default 10)")

    def handle(self, *args: Any, **options: Any) -> None:
        counts = tenant_counts()
        out = self.stdout.write
        for line in _table("Tenants by tier and status", list(TenantStatus.values), counts["status"]):
            out(line)
        out("")
        for line in _table("Tenants by tier and state", list(State.values), counts["state"]):
            out(line)
        out("")
        jobs = recent_archival_jobs(max(0, options["jobs"]))
        out(f"Recent archival jobs ({len(jobs)})")
        if not jobs:
            out("  none")
        for job in jobs:
            when = job.created_at.strftime("%Y-%m-%d %H:%M:%S") if job.created_at else "-"
            error = f"  error: {' '.join((job.error_message or '').split())[:80]}" if job.error_message else ""
            out(
                f"  {when}  {job.job_type:<8} {job.status:<10} attempts={job.attempts}  {job.id}  "
                f"{job.tenant.email}{error}"
            )

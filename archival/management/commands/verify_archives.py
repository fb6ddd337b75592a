"""Archive drill: open archives into a scratch directory and check them in full, never touching live data."""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from archival.drills import run_drill
from archival.models import ArchivalJob
from core.commands import PlatformCommand


class Command(PlatformCommand):
    help = "Verify archived tenants' archives by a scratch restore (digest and entry count against the manifest)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sample", type=int, default=None, help="check N random archives instead of all")

    def handle(self, *args: Any, **opts: Any) -> None:
        def report(job: ArchivalJob, error: str | None) -> None:
            if error is None:
                self.stdout.write(f"ok   {job.tenant_id} {job.s3_key}")
            else:
                self.stdout.write(f"FAIL {job.tenant_id} {job.s3_key}: {error}")

        drill = run_drill(sample=opts["sample"], report=report)
        self.stdout.write(f"{drill.checked - drill.failed}/{drill.checked} archives verified")
        if drill.failed:
            raise CommandError(f"{drill.failed} archive(s) failed verification")

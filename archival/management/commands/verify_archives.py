"""Restore drill: open archives into a scratch directory and compare digests, never touching live data."""

from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from archival import services
from archival.selectors import completed_archives
from tenants.commands import PlatformCommand
from tenants.errors import PlatformError


class Command(PlatformCommand):
    help = "Verify archived tenants' archives by a scratch restore (digest and entry count against the manifest)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sample", type=int, default=None, help="check N random archives instead of all")

    def handle(self, *args: Any, **opts: Any) -> None:
        jobs = list(completed_archives(sample=opts["sample"]))
        failures = []
        for job in tqdm(jobs, desc="verifying archives", unit="archive", file=self.stderr._out, disable=not jobs):
            try:
                got = services.verify_archive(job=job)
            except PlatformError as exc:
                failures.append(job)
                self.stdout.write(f"FAIL {job.tenant_id} {job.s3_key}: {exc.message}")
            else:
                self.stdout.write(f"ok   {job.tenant_id} {job.s3_key}: {got.entry_count} entries")
        self.stdout.write(f"{len(jobs) - len(failures)}/{len(jobs)} archives verified")
        if failures:
            raise CommandError(f"{len(failures)} archive(s) failed verification")

"""What `archive_tenant` and `restore_tenant` share: resolve the tenant, request the job, optionally run it here."""

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandParser

from archival.models import ArchivalJob
from core.commands import PlatformCommand, cli_actor
from tenants.selectors import resolve_tenant_id


class JobCommand(PlatformCommand):
    verb: str
    request: Callable[..., ArchivalJob]
    run: Callable[..., ArchivalJob]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", metavar="TENANT_ID_OR_EMAIL")
        parser.add_argument("--wait", action="store_true", help="run in this process instead of enqueueing")

    def request_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Extra keyword arguments for the request (a subclass's own options)."""
        return {}

    def handle(self, *args: Any, **options: Any) -> None:
        tenant_id = resolve_tenant_id(options["tenant"])
        job = type(self).request(
            tenant_id=tenant_id, actor=cli_actor(), enqueue=not options["wait"], **self.request_options(options)
        )
        if options["wait"]:
            job = type(self).run(job_id=job.id)
        self.stdout.write(f"{self.verb} job {job.id}: {job.status}")

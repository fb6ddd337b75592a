"""Restore one archived tenant: `manage.py restore_tenant TENANT_ID_OR_EMAIL [--wait] [--verify]`."""

from typing import Any

from django.core.management.base import CommandParser

from archival import services
from archival.commands import JobCommand


class Command(JobCommand):
    help = "Restore an archived tenant from the object store (enqueued, or inline with --wait)."
    verb = "restore"
    request = staticmethod(services.restore_request)
    run = staticmethod(services.restore_run)

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--verify",
            action="store_true",
            help="also read every key and value back and compare the archive's digest (about twice the time)",
        )

    def request_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {"verify": options["verify"]}

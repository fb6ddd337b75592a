"""`manage.py create_tenant --email E --tier A|B|C [--security-mode node_based|mobile_only]`: prints the new id."""

from typing import Any

from django.core.management.base import CommandParser

from core.commands import PlatformCommand, cli_actor
from tenants.models import SecurityMode
from tenants.services import tenant_provision


class Command(PlatformCommand):
    help = "Provision a tenant (tenant, state, data key, audit row) and print its id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True, help="the tenant's email (unique in any letter case)")
        # Tier and mode are validated by the service, so a bad value gives the same one-line error as the API.
        parser.add_argument("--tier", required=True, help="A (premium), B (standard) or C (free)")
        parser.add_argument(
            "--security-mode", default=SecurityMode.NODE_BASED.value, help="node_based (default) or mobile_only"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_provision(
            email=options["email"],
            tier=options["tier"],
            security_mode=options["security_mode"],
            actor=cli_actor(),
        )
        self.stdout.write(str(tenant.id))

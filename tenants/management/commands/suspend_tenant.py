"""`manage.py suspend_tenant TENANT_ID_OR_EMAIL [--reason R]`."""

from typing import Any

from django.core.management.base import CommandParser

from core.commands import PlatformCommand, cli_actor
from tenants.models import Tenant, TenantStatus
from tenants.selectors import resolve_tenant_id
from tenants.services import tenant_suspend


class Command(PlatformCommand):
    help = "Suspend a tenant, given its id or email. Suspending a suspended tenant changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", metavar="TENANT_ID_OR_EMAIL")
        parser.add_argument("--reason", default="", help="recorded on the audit row")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant_id = resolve_tenant_id(options["tenant"])
        was_suspended = Tenant.objects.filter(pk=tenant_id, status=TenantStatus.SUSPENDED).exists()
        tenant = tenant_suspend(tenant_id=tenant_id, actor=cli_actor(), reason=options["reason"])
        note = " (already suspended)" if was_suspended else ""
        self.stdout.write(f"tenant {tenant.id} ({tenant.email}) suspended{note}")

"""`manage.py suspend_tenant TENANT_ID_OR_EMAIL [--reason R]`."""

import uuid
from typing import Any

from django.core.management.base import CommandParser

from tenants.commands import PlatformCommand, cli_actor
from tenants.errors import NotFound
from tenants.models import Tenant, TenantStatus
from tenants.services import tenant_suspend


def resolve_tenant_id(ref: str) -> uuid.UUID:
    """A tenant id from an id or an email (any letter case); NotFound otherwise."""
    ref = ref.strip()
    try:
        tenant_id = uuid.UUID(ref)
    except ValueError:
        found = Tenant.objects.filter(email=ref.lower()).values_list("id", flat=True).first()
        if found is None:
            raise NotFound(f"no tenant with id or email {ref!r}") from None
        return found
    if not Tenant.objects.filter(pk=tenant_id).exists():
        raise NotFound(f"no tenant with id or email {ref!r}")
    return tenant_id


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

"""Mint a platform token for a tenant (operators and tests): `manage.py issue_token TENANT_ID_OR_EMAIL [--ttl S]`."""

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from core.commands import PlatformCommand
from gateway.auth.tokens import MAX_LIFETIME, mint_platform_token
from tenants.models import Tenant, TenantStatus
from tenants.selectors import resolve_tenant_id


class Command(PlatformCommand):
    help = "Print a short-lived platform JWT for a tenant, for `Authorization: Bearer <token>` at the gateway."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant id or email")
        parser.add_argument("--ttl", type=int, default=900, help=f"seconds, at most {MAX_LIFETIME['platform']}")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.get(pk=resolve_tenant_id(options["tenant"]))
        if tenant.status != TenantStatus.ACTIVE:
            raise CommandError(f"tenant {tenant.id} is {tenant.status}; the gateway would refuse its tokens")
        ttl = options["ttl"]
        if not 0 < ttl <= MAX_LIFETIME["platform"]:
            raise CommandError(f"--ttl must be between 1 and {MAX_LIFETIME['platform']} seconds")
        token = mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=tenant.id, ttl_seconds=ttl)
        self.stdout.write(token)

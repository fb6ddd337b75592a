"""The one place billing moves a tenant between tiers (issue #13's tier-move service)."""

from tenants.audit import Actor
from tenants.models import Tenant

BILLING_ACTOR = Actor.system("service:billing")


def move_tenant_to_tier(*, tenant: Tenant, tier: str, reason: str) -> None:
    """Move `tenant` to `tier` (nothing when it is there already). Runs inside the caller's transaction.

    Until the tier-move service of #13 lands, this fences the old tier through the admin's tier change (generation
    bump, the gateway routes to the new tier); this function is the only place to change when it does.
    """
    if tenant.tier == tier:
        return
    from tenants.admin_services import tenant_update

    tenant_update(tenant_id=tenant.id, tier=tier, actor=BILLING_ACTOR)
    tenant.tier = tier

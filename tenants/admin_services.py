"""Writes behind the tenant admin's change form: the editable fields, validated, with an audit row."""

import uuid

from django.db import IntegrityError, transaction

from tenants.audit import Actor, audit_write, changes
from tenants.emails import normalize_email
from tenants.errors import Conflict
from tenants.events import tenant_changed
from tenants.models import SecurityMode, Tenant, TenantState, Tier
from tenants.services import locked_tenant, require_choice


def _fence_old_tier(tenant: Tenant) -> None:
    """A new tier means new pods: bump the generation and forget the pod, so the old tier's pod is refused from now
    on and the gateway routes the tenant to its new tier (which loads it on the next request)."""
    state = TenantState.objects.select_for_update().get(tenant=tenant)
    state.generation += 1
    state.pod_id = None
    state.tier_deployment = f"tier-{tenant.tier.lower()}"
    state.save(update_fields=["generation", "pod_id", "tier_deployment", "updated_at"])


# Status is not here on purpose: it changes only through tenant_suspend / tenant_reactivate / tenant_delete.
EDITABLE_FIELDS = ("email", "tier", "security_mode")


def tenant_update(
    *,
    tenant_id: uuid.UUID | str,
    actor: Actor,
    email: object = None,
    tier: object = None,
    security_mode: object = None,
) -> Tenant:
    """Change a tenant's email, tier or security mode (None leaves a field alone); one audit row lists the changes."""
    wanted: dict[str, str] = {}
    if email is not None:
        wanted["email"] = normalize_email(email)
    if tier is not None:
        wanted["tier"] = require_choice("tier", tier, Tier.values)
    if security_mode is not None:
        wanted["security_mode"] = require_choice("security_mode", security_mode, SecurityMode.values)
    try:
        with transaction.atomic():
            tenant = locked_tenant(tenant_id)
            before = {field: getattr(tenant, field) for field in wanted}
            diff = changes(before, wanted)
            if not diff:
                return tenant
            for field in diff:
                setattr(tenant, field, wanted[field])
            tenant.save(update_fields=[*diff, "updated_at"])
            if "tier" in diff:
                _fence_old_tier(tenant)
            tenant_changed(tenant.id)
            audit_write(
                actor=actor,
                action="tenant.updated",
                tenant=tenant,
                resource_type="tenant",
                resource_id=tenant.id,
                metadata={"changes": diff},
            )
    except IntegrityError as exc:
        if "email" in wanted and Tenant.objects.filter(email=wanted["email"]).exclude(pk=tenant_id).exists():
            raise Conflict(
                f"a tenant with email {wanted['email']} already exists", fields={"email": ["Already in use."]}
            ) from exc
        raise
    return tenant

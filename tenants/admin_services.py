"""Writes behind the tenant admin's change form: the editable fields, validated, with an audit row."""

import uuid

from django.db import IntegrityError, transaction

from core.audit import Actor, audit_write, changes
from core.emails import normalize_email
from core.errors import Conflict
from tenants.events import tenant_changed
from tenants.models import SecurityMode, Tenant
from tenants.services import locked_tenant, require_choice

# Status is not here on purpose: it changes only through tenant_suspend / tenant_reactivate / tenant_delete; the tier
# is on the form but changes only through a tier move (moves.services.tenant_move), which the admin starts.
EDITABLE_FIELDS = ("email", "tier", "security_mode")


def tenant_update(
    *,
    tenant_id: uuid.UUID | str,
    actor: Actor,
    email: object = None,
    security_mode: object = None,
) -> Tenant:
    """Change a tenant's email or security mode (None leaves a field alone); one audit row lists the changes."""
    wanted: dict[str, str] = {}
    if email is not None:
        wanted["email"] = normalize_email(email)
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

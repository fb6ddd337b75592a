"""Writes on tenants and devices: keyword-only, transactional, each leaving an audit row."""

import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import Actor, audit_write, changes
from core.emails import normalize_email
from core.errors import Conflict, ForbiddenTransition, InvalidInput, NotFound, StaleGeneration
from tenants.events import tenant_changed
from tenants.keys import tenant_key_create
from tenants.lifecycle import GENERATION_BUMPING, is_allowed
from tenants.models import SecurityMode, State, Tenant, TenantState, TenantStatus, Tier


def require_choice(field: str, value: object, allowed: list[str]) -> str:
    if value not in allowed:
        raise InvalidInput(f"invalid {field}: {value!r}", fields={field: [f"Must be one of {', '.join(allowed)}."]})
    return str(value)


def locked_tenant(tenant_id: uuid.UUID | str) -> Tenant:
    try:
        return Tenant.objects.select_for_update().get(pk=tenant_id)
    except (Tenant.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound(f"tenant {tenant_id} does not exist") from exc


def tenant_provision(
    *, email: object, tier: object, security_mode: object = SecurityMode.NODE_BASED, actor: Actor
) -> Tenant:
    """Create a tenant with its state row, its first data key and an audit row, or nothing at all."""
    email = normalize_email(email)
    tier = require_choice("tier", tier, Tier.values)
    security_mode = require_choice("security_mode", security_mode, SecurityMode.values)
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(email=email, tier=tier, security_mode=security_mode)
            TenantState.objects.create(tenant=tenant, state=State.COLD)
            key = tenant_key_create(tenant=tenant)
            audit_write(
                actor=actor,
                action="tenant.created",
                tenant=tenant,
                resource_type="tenant",
                resource_id=tenant.id,
                metadata={"email": email, "tier": tier, "security_mode": security_mode, "key_id": key.key_id},
            )
    except IntegrityError as exc:
        if Tenant.objects.filter(email=email).exists():
            raise Conflict(
                f"a tenant with email {email} already exists", fields={"email": ["Already in use."]}
            ) from exc
        raise
    return tenant


def _tenant_set_status(
    *, tenant_id: uuid.UUID | str, status: str, allowed_from: set[str], action: str, actor: Actor, reason: str = ""
) -> Tenant:
    with transaction.atomic():
        tenant = locked_tenant(tenant_id)
        if tenant.status == status:
            return tenant
        if tenant.status not in allowed_from:
            raise Conflict(f"tenant {tenant.id} is {tenant.status}; cannot {action.split('.')[-1]} it")
        before = {"status": tenant.status}
        tenant.status = status
        tenant.save(update_fields=["status", "updated_at"])
        metadata: dict[str, object] = {"changes": changes(before, {"status": status})}
        if reason:
            metadata["reason"] = reason
        audit_write(
            actor=actor, action=action, tenant=tenant, resource_type="tenant", resource_id=tenant.id, metadata=metadata
        )
        tenant_changed(tenant.id)
    return tenant


def tenant_suspend(*, tenant_id: uuid.UUID | str, actor: Actor, reason: str = "") -> Tenant:
    return _tenant_set_status(
        tenant_id=tenant_id,
        status=TenantStatus.SUSPENDED,
        allowed_from={TenantStatus.ACTIVE},
        action="tenant.suspended",
        actor=actor,
        reason=reason,
    )


def tenant_reactivate(*, tenant_id: uuid.UUID | str, actor: Actor) -> Tenant:
    return _tenant_set_status(
        tenant_id=tenant_id,
        status=TenantStatus.ACTIVE,
        allowed_from={TenantStatus.SUSPENDED},
        action="tenant.reactivated",
        actor=actor,
    )


def tenant_delete(*, tenant_id: uuid.UUID | str, actor: Actor, reason: str = "") -> Tenant:
    """Mark deleted (the row stays for audit and billing history); devices are revoked with it."""
    with transaction.atomic():
        tenant = _tenant_set_status(
            tenant_id=tenant_id,
            status=TenantStatus.DELETED,
            allowed_from={TenantStatus.ACTIVE, TenantStatus.SUSPENDED},
            action="tenant.deleted",
            actor=actor,
            reason=reason,
        )
        tenant.devices.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    return tenant


def tenant_state_transition(
    *, tenant_id: uuid.UUID | str, to_state: object, generation: object, actor: Actor, pod_id: str | None = None
) -> TenantState:
    """Move a tenant's state along an allowed transition, only for the holder of the current generation."""
    to_state = require_choice("state", to_state, State.values)
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 1:
        raise InvalidInput("invalid generation", fields={"generation": ["Must be a positive integer."]})
    with transaction.atomic():
        tenant = locked_tenant(tenant_id)
        state = TenantState.objects.select_for_update().get(tenant=tenant)
        if generation != state.generation:
            raise StaleGeneration(f"generation {generation} is stale; current is {state.generation}")
        if state.state == to_state and (pod_id is None or pod_id == state.pod_id):
            return state
        if state.state != to_state and not is_allowed(state.state, to_state):
            raise ForbiddenTransition(f"transition {state.state} -> {to_state} is not allowed")
        before = {"state": state.state, "pod_id": state.pod_id, "generation": state.generation}
        now = timezone.now()
        if (state.state, to_state) in GENERATION_BUMPING:
            state.generation += 1
        if to_state in (State.COLD, State.ARCHIVED) and state.state in (State.HOT, State.WARM):
            state.last_eviction_at = now
        if to_state in (State.HOT, State.WARM):
            state.last_access_at = now
        state.state = to_state
        if pod_id is not None:
            state.pod_id = pod_id or None
        if to_state in (State.COLD, State.ARCHIVED):
            state.pod_id = None
        state.save()
        after = {"state": state.state, "pod_id": state.pod_id, "generation": state.generation}
        tenant_changed(tenant.id)
        audit_write(
            actor=actor,
            action="tenant.state_changed",
            tenant=tenant,
            resource_type="tenant_state",
            resource_id=tenant.id,
            metadata={"changes": changes(before, after)},
        )
    return state


def tenant_assign_pod(*, tenant_id: uuid.UUID | str, pod_id: str, actor: Actor) -> TenantState:
    """(Re)assign the tenant to a pod and bump the generation, fencing off whichever pod held it before."""
    with transaction.atomic():
        tenant = locked_tenant(tenant_id)
        state = TenantState.objects.select_for_update().get(tenant=tenant)
        before = {"pod_id": state.pod_id, "generation": state.generation}
        state.pod_id = pod_id
        state.tier_deployment = f"tier-{tenant.tier.lower()}"
        state.generation += 1
        state.save(update_fields=["pod_id", "tier_deployment", "generation", "updated_at"])
        tenant_changed(tenant.id)
        audit_write(
            actor=actor,
            action="tenant.pod_assigned",
            tenant=tenant,
            resource_type="tenant_state",
            resource_id=tenant.id,
            metadata={"changes": changes(before, {"pod_id": pod_id, "generation": state.generation})},
        )
    return state

"""Reads: the gateway's tier lookup, the cold-tenant sweep, and summaries for operators."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from django.core.exceptions import ValidationError
from django.db.models import Count, FilteredRelation, Q, QuerySet
from django.utils import timezone

from core.emails import normalize_email_prefix
from core.errors import NotFound
from tenants.models import State, Tenant, TenantState


@dataclass(frozen=True)
class TenantRoute:
    tenant_id: uuid.UUID
    tier: str
    status: str
    security_mode: str
    state: str
    generation: int
    pod_id: str | None
    moving: bool = False  # a tier move is under way (moves app): the gateway holds the tenant's cold path

    @cached_property
    def key(self) -> str:
        """The tenant id as text, made once per cached route rather than on every request that uses it."""
        return str(self.tenant_id)


_ROUTE_FIELDS = (
    "id",
    "tier",
    "status",
    "security_mode",
    "state__state",
    "state__generation",
    "state__pod_id",
    "active_move__id",
)


def _routes() -> QuerySet[Tenant]:
    """Tenants with their unfinished tier move, if any: at most one row each (the moves app's partial unique index
    on unfinished moves), joined by the relation's name so that this app imports nothing from moves."""
    return Tenant.objects.annotate(active_move=FilteredRelation("moves", condition=Q(moves__finished_at__isnull=True)))


def tenant_route(*, tenant_id: uuid.UUID | str) -> TenantRoute | None:
    """Tier, status, state and generation for one tenant in one indexed query; None if unknown."""
    try:
        row = _routes().filter(pk=tenant_id).values_list(*_ROUTE_FIELDS).first()
    except (ValueError, TypeError, ValidationError):  # not a UUID at all
        return None
    if row is None:
        return None
    tid, tier, status, mode, state, generation, pod_id, move_id = row
    return TenantRoute(tid, tier, status, mode, state or State.COLD, generation or 1, pod_id, move_id is not None)


def tenant_routes(*, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, TenantRoute]:
    """`tenant_route` for many tenants in one query (the gateway's refresh of routes it keeps); unknown ids absent."""
    rows = _routes().filter(pk__in=tenant_ids).values_list(*_ROUTE_FIELDS)
    return {
        tid: TenantRoute(tid, tier, status, mode, state or State.COLD, generation or 1, pod_id, move_id is not None)
        for tid, tier, status, mode, state, generation, pod_id, move_id in rows
    }


def cold_tenants_idle(
    *, idle_days: int, limit: int | None = None, now: datetime | None = None
) -> QuerySet[TenantState]:
    """Cold tenants whose last access is older than `idle_days`, longest idle first (uses idx_tenant_states_idle)."""
    cutoff = (now or timezone.now()) - timedelta(days=idle_days)
    qs = TenantState.objects.filter(state=State.COLD, last_access_at__lt=cutoff).order_by("last_access_at")
    return qs[:limit] if limit is not None else qs


def tenant_counts() -> dict[str, list[tuple[str, str, int]]]:
    """Tenants by tier and status, and by tier and state: what `platform_status` prints."""
    by_status = Tenant.objects.values_list("tier", "status").annotate(n=Count("id")).order_by("tier", "status")
    by_state = (
        TenantState.objects.values_list("tenant__tier", "state")
        .annotate(n=Count("tenant_id"))
        .order_by("tenant__tier", "state")
    )
    return {"status": list(by_status), "state": list(by_state)}


@dataclass(frozen=True)
class DeviceKey:
    device_id: uuid.UUID
    tenant_id: uuid.UUID
    public_key_signing: str
    revoked: bool


def device_key(*, device_id: uuid.UUID | str) -> DeviceKey | None:
    """A device's signing key, tenant and revocation, for verifying its tokens; None if unknown."""
    from tenants.models import Device

    try:
        row = Device.objects.filter(pk=device_id).values_list("tenant_id", "public_key_signing", "revoked_at").first()
    except (ValueError, TypeError):
        return None
    if row is None:
        return None
    return DeviceKey(uuid.UUID(str(device_id)), row[0], row[1], row[2] is not None)


def resolve_tenant_id(ref: str) -> uuid.UUID:
    """A tenant id from an id or an email (any letter case); NotFound otherwise."""
    ref = ref.strip()
    try:
        tenant_id = uuid.UUID(ref)
    except ValueError:
        found = Tenant.objects.filter(email=normalize_email_prefix(ref)).values_list("id", flat=True).first()
        if found is None:
            raise NotFound(f"no tenant with id or email {ref!r}") from None
        return found
    if not Tenant.objects.filter(pk=tenant_id).exists():
        raise NotFound(f"no tenant with id or email {ref!r}")
    return tenant_id

"""Reads on tier moves: the active move of a tenant, a tenant's history, stalled moves, counts for metrics."""

import uuid
from datetime import timedelta

from django.db.models import Count, Exists, F, OuterRef, QuerySet
from django.utils import timezone

from moves.models import Move
from tenants.models import Tenant, TenantStatus


def active_move(tenant_id: uuid.UUID | str) -> Move | None:
    return Move.objects.filter(tenant_id=tenant_id, finished_at__isnull=True).first()


def move_history(tenant_id: uuid.UUID | str, *, limit: int = 20) -> QuerySet[Move]:
    """The tenant's latest moves, newest first (idx_tenant_moves_tenant)."""
    return Move.objects.filter(tenant_id=tenant_id).order_by("-created_at")[:limit]


def stalled_moves(*, older_than: timedelta) -> QuerySet[Move]:
    """Unfinished moves untouched for longer than a move takes: their worker died or their message was lost."""
    cutoff = timezone.now() - older_than
    return Move.objects.filter(finished_at__isnull=True, updated_at__lt=cutoff).order_by("updated_at")


def move_counts() -> list[tuple[str, str, str, int]]:
    """(from, to, result, n) for finished moves: the `percolate_tier_moves_total` counter."""
    rows = (
        Move.objects.filter(finished_at__isnull=False)
        .exclude(from_tier=F("to_tier"))
        .values_list("from_tier", "to_tier", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [(f, t, s, n) for f, t, s, n in rows]


def tenants_to_move(*, from_tier: str, limit: int) -> list[uuid.UUID]:
    """Up to ``limit`` tenant ids on ``from_tier`` (not deleted, not moving now), oldest first."""
    return list(
        Tenant.objects.filter(tier=from_tier)
        .exclude(status=TenantStatus.DELETED)
        .exclude(Exists(Move.objects.filter(tenant=OuterRef("pk"), finished_at__isnull=True)))
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def moves_by_id(ids: list[uuid.UUID]) -> QuerySet[Move]:
    return Move.objects.filter(pk__in=ids)

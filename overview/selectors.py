"""What the staff overview shows, read cheaply enough for 1M tenants.

Big classes are estimated the way the admin's changelists are (`core.admin_paginator.estimated_count`: the planner's
estimate on PostgreSQL, an exact count when that estimate is below 10,000 or on SQLite), so small numbers (hot tenants,
jobs in flight, failures) are exact and move as things happen while millions of cold rows are never counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min, OuterRef, QuerySet, Subquery
from django.utils import timezone

from archival.models import ACTIVE_JOB_STATUSES, ArchivalJob, JobStatus
from backups.models import RestoreDrill
from billing.models import BillingEvent, ProcessingStatus
from core.admin_paginator import EXACT_COUNT_THRESHOLD, estimated_count, plan_estimate, table_estimate
from core.tier_policy import TIERS
from moves.models import ACTIVE_STATUSES as MOVE_ACTIVE
from moves.models import Move, MoveStatus
from tenants.models import State, TenantState

RECENT_JOBS = 10


def counts_by(queryset: QuerySet, fields: tuple[str, ...], keys: Sequence[tuple[str, ...]]) -> tuple[dict, bool]:
    """Row counts of `queryset` per value of `fields`, for each of `keys`, and whether any is an estimate.

    A small table (or SQLite) is counted exactly in one GROUP BY; a big one gets one planner estimate per key, exact
    where that estimate is below the threshold, so millions of rows are never scanned.
    """
    if connection.vendor != "postgresql" or (table_estimate(queryset) or 0) < EXACT_COUNT_THRESHOLD:
        rows = queryset.order_by().values_list(*fields).annotate(n=Count("pk"))
        exact = {tuple(row[:-1]): row[-1] for row in rows}
        return {key: exact.get(key, 0) for key in keys}, False
    counts = {key: estimated_count(queryset.filter(**dict(zip(fields, key, strict=True)))) for key in keys}
    return counts, any(n >= EXACT_COUNT_THRESHOLD for n in counts.values())


def tenant_counts() -> dict[str, Any]:
    """Tenants per tier and state (a matrix with totals); `estimated` when any cell is an estimate.

    On a big table each state is sized first (one estimate on idx_tenant_states_state, exact when small); the small
    states are then split by tier exactly in one GROUP BY over their few rows, the big ones by the planner's estimate
    of each cell (the join with `tenants` is never run over millions of rows).
    """
    keys = [(tier, state) for tier in TIERS for state in State.values]
    states = TenantState.objects.all()
    if connection.vendor != "postgresql" or (table_estimate(states) or 0) < EXACT_COUNT_THRESHOLD:
        counts, estimated = counts_by(states, ("tenant__tier", "state"), keys)
    else:
        sizes = {state: estimated_count(states.filter(state=state)) for state in State.values}
        small = [state for state, n in sizes.items() if n < EXACT_COUNT_THRESHOLD]
        exact = states.filter(state__in=small).order_by().values_list("tenant__tier", "state").annotate(n=Count("pk"))
        counts = {(tier, state): n for tier, state, n in exact}
        for tier, state in keys:
            if state not in small:
                counts[(tier, state)] = plan_estimate(states.filter(state=state, tenant__tier=tier)) or 0
            counts.setdefault((tier, state), 0)
        estimated = len(small) < len(sizes)
    rows: dict[str, dict[str, int]] = {}
    for tier in TIERS:
        row = {state: counts[(tier, state)] for state in State.values}
        rows[tier] = {**row, "total": sum(row.values())}
    rows["all"] = {key: sum(rows[t][key] for t in TIERS) for key in [*State.values, "total"]}
    return {"states": list(State.values), "rows": rows, "estimated": estimated}


def hot_per_pod() -> list[dict[str, Any]]:
    """Hot tenants on each pod against its tier's capacity (hot rows are few: bounded by pods x capacity)."""
    # Grouped on tenant_states alone; each pod's tier is read from one of its tenants (nodes report no
    # tier_deployment), one index lookup per pod instead of joining every hot row with `tenants`.
    tier_of_pod = TenantState.objects.filter(state=State.HOT, pod_id=OuterRef("pod_id")).values("tenant__tier")[:1]
    per_pod = (
        TenantState.objects.filter(state=State.HOT)
        .values("pod_id")
        .annotate(hot=Count("pk"))
        .annotate(pod_tier=Subquery(tier_of_pod))
        .order_by("pod_id")
    )
    pods = []
    for row in per_pod:
        tier = row["pod_tier"]
        policy = settings.TIER_POLICY.get(tier)
        pods.append(
            {
                "pod": row["pod_id"] or "(none)",
                "tier": tier,
                "hot": row["hot"],
                "capacity": policy.max_hot_per_pod if policy else None,
            }
        )
    return sorted(pods, key=lambda pod: (pod["tier"] or "", pod["pod"]))


def archival_jobs() -> dict[str, Any]:
    """Jobs in flight and failed (counts), and the latest of them."""
    by_status, _ = counts_by(ArchivalJob.objects.all(), ("status",), [(status,) for status in JobStatus.values])
    counts = {status: n for (status,), n in by_status.items()}
    recent = (
        ArchivalJob.objects.filter(status__in=[*ACTIVE_JOB_STATUSES, JobStatus.FAILED])
        .order_by("-created_at")
        .values("id", "job_type", "status", "tenant_id", "manifest", "attempts", "created_at")[:RECENT_JOBS]
    )
    return {
        "counts": counts,
        "recent": [
            {
                "id": str(job["id"]),
                "type": job["job_type"],
                "status": job["status"],
                "tenant": str(job["tenant_id"]),
                "stage": (job["manifest"] or {}).get("stage", ""),
                "attempts": job["attempts"],
                "created_at": job["created_at"].isoformat(),
            }
            for job in recent
        ],
    }


def tier_moves() -> dict[str, Any]:
    """Tier moves by status, and the latest in flight or rolled back."""
    by_status, _ = counts_by(Move.objects.all(), ("status",), [(status,) for status in MoveStatus.values])
    recent = (
        Move.objects.filter(status__in=[*MOVE_ACTIVE, MoveStatus.ROLLED_BACK])
        .order_by("-created_at")
        .values("id", "tenant_id", "from_tier", "to_tier", "status", "step", "created_at")[:RECENT_JOBS]
    )
    return {
        "counts": {status: n for (status,), n in by_status.items()},
        "recent": [
            {
                "id": str(move["id"]),
                "tenant": str(move["tenant_id"]),
                "from_tier": move["from_tier"],
                "to_tier": move["to_tier"],
                "status": move["status"],
                "step": move["step"],
                "created_at": move["created_at"].isoformat(),
            }
            for move in recent
        ],
    }


def billing_events() -> dict[str, Any]:
    """Webhook events waiting and failed, and the processing lag: the age of the oldest event still waiting."""
    waiting = BillingEvent.objects.filter(processing_status=ProcessingStatus.RECEIVED)
    oldest = waiting.aggregate(oldest=Min("created_at"))["oldest"]  # idx_billing_events_processing
    return {
        "received": estimated_count(waiting),
        "failed": estimated_count(BillingEvent.objects.filter(processing_status=ProcessingStatus.FAILED)),
        "lag_seconds": round((timezone.now() - oldest).total_seconds(), 1) if oldest else 0.0,
    }


def last_drill() -> dict[str, Any] | None:
    drill = RestoreDrill.objects.order_by("-started_at").first()
    if drill is None:
        return None
    return {
        "status": drill.status,
        "backup": drill.backup_name,
        "started_at": drill.started_at.isoformat(),
        "duration_seconds": drill.duration_seconds,
        "error": drill.error[:200],
    }


def snapshot() -> dict[str, Any]:
    """Everything the overview shows, as JSON-ready data."""
    return {
        "tenants": tenant_counts(),
        "pods": hot_per_pod(),
        "archival": archival_jobs(),
        "moves": tier_moves(),
        "billing": billing_events(),
        "drill": last_drill(),
    }

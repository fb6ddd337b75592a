"""Reads for archival: jobs, the latest archive of a tenant, tenants due for archiving."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from archival.models import ACTIVE_JOB_STATUSES, ArchivalJob, ArchiveDrill, DrillStatus, JobStatus, JobType
from tenants.models import State, TenantState, TenantStatus
from tenants.selectors import cold_tenants_idle


def tenant_data_dir(tenant_id: uuid.UUID | str) -> Path:
    return Path(settings.TENANT_DATA_ROOT) / str(tenant_id)


def active_job(tenant_id: uuid.UUID | str) -> ArchivalJob | None:
    return ArchivalJob.objects.filter(tenant_id=tenant_id, status__in=ACTIVE_JOB_STATUSES).first()


def latest_archive(tenant_id: uuid.UUID | str) -> ArchivalJob | None:
    """The tenant's most recent completed archive (the one a restore opens)."""
    return (
        ArchivalJob.objects.filter(tenant_id=tenant_id, job_type=JobType.ARCHIVE, status=JobStatus.COMPLETED)
        .order_by("-completed_at", "-created_at")
        .first()
    )


def cold_tenants_due(*, older_than_days: int | None = None, limit: int | None = None) -> QuerySet[TenantState]:
    """Cold tenants idle longer than the policy (``tenants.selectors.cold_tenants_idle``: one rule for "cold and idle
    more than N days", longest idle first), not deleted, with no active job."""
    days = settings.ARCHIVE_COLD_AFTER_DAYS if older_than_days is None else older_than_days
    busy = ArchivalJob.objects.filter(status__in=ACTIVE_JOB_STATUSES).values("tenant_id")
    qs = (
        cold_tenants_idle(idle_days=days)
        .exclude(tenant__status=TenantStatus.DELETED)
        .exclude(tenant_id__in=busy)
        .select_related("tenant")
    )
    return qs[:limit] if limit else qs


def completed_archives(*, sample: int | None = None) -> QuerySet[ArchivalJob]:
    """Latest completed archive per archived tenant (random sample when asked)."""
    qs = (
        ArchivalJob.objects.filter(
            job_type=JobType.ARCHIVE, status=JobStatus.COMPLETED, tenant__state__state=State.ARCHIVED
        )
        .order_by("tenant_id", "-completed_at")
        .distinct("tenant_id")
        if _postgres()
        else ArchivalJob.objects.filter(
            job_type=JobType.ARCHIVE, status=JobStatus.COMPLETED, tenant__state__state=State.ARCHIVED
        )
    )
    ids = list(qs.values_list("id", flat=True))
    jobs = ArchivalJob.objects.filter(id__in=ids)
    return jobs.order_by("?")[:sample] if sample else jobs.order_by("created_at")


def stalled_jobs(*, older_than: timedelta) -> QuerySet[ArchivalJob]:
    """Pending or running jobs untouched for longer than any task may take (their message was lost)."""
    cutoff = timezone.now() - older_than
    return ArchivalJob.objects.filter(
        Q(status=JobStatus.PENDING, created_at__lt=cutoff) | Q(status=JobStatus.RUNNING, started_at__lt=cutoff),
        job_type__in=(JobType.ARCHIVE, JobType.RESTORE),
    ).order_by("created_at")


def _postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def job_counts() -> list[tuple[str, str, int]]:
    """(job_type, status, count) over all jobs: the source of `percolate_archival_jobs_total`."""
    from django.db.models import Count

    rows = ArchivalJob.objects.values_list("job_type", "status").annotate(n=Count("id")).order_by()
    return [(job_type, status, n) for job_type, status, n in rows]


@dataclass(frozen=True)
class DrillHealth:
    last_run_at: float  # Unix time the last drill finished (0: never)
    last_success_at: float  # ... the last one that passed
    last_failures: int  # archives that failed in the last finished drill
    runs: dict[str, int]  # drills by status


def drill_health() -> DrillHealth:
    from django.db.models import Count

    finished = ArchiveDrill.objects.exclude(status=DrillStatus.RUNNING).order_by("-completed_at")
    last = finished.first()
    passed = finished.filter(status=DrillStatus.PASSED).first()
    runs = dict(ArchiveDrill.objects.values_list("status").annotate(n=Count("id")).order_by())
    return DrillHealth(
        last_run_at=last.completed_at.timestamp() if last and last.completed_at else 0.0,
        last_success_at=passed.completed_at.timestamp() if passed and passed.completed_at else 0.0,
        last_failures=last.failed if last else 0,
        runs={status: runs.get(status, 0) for status in DrillStatus.values},
    )

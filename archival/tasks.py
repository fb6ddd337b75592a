"""Celery shells: load the job by id and call the service. acks_late + reject_on_worker_lost: a worker that dies
mid-task leaves the message to be delivered again, and the service resumes from the recorded stage."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from archival import drills, retention, scratch, services
from core.errors import Conflict

RETRY: Any = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (services.TransientArchivalError,),
    "retry_backoff": 30,
    "retry_backoff_max": 900,
    "retry_jitter": True,
    "max_retries": 6,
}


@shared_task(name="archival.archive_tenant", bind=True, **RETRY)
def archive_tenant(self: Task, job_id: str) -> str:
    try:
        return services.archive_run(job_id=job_id).status
    except Conflict as exc:  # another worker runs this job right now: let it finish
        return f"skipped: {exc}"


@shared_task(name="archival.restore_tenant", bind=True, **RETRY)
def restore_tenant(self: Task, job_id: str) -> str:
    try:
        return services.restore_run(job_id=job_id).status
    except Conflict as exc:
        return f"skipped: {exc}"


@shared_task(name="archival.archive_cold_tenants", acks_late=True)
def archive_cold_tenants(limit: int = 100) -> int:
    """Beat: request archives for cold tenants idle past ARCHIVE_COLD_AFTER_DAYS, a bounded batch per run."""
    return len(services.sweep_cold_tenants(limit=limit))


@shared_task(name="archival.requeue_stalled_jobs", acks_late=True)
def requeue_stalled_jobs() -> int:
    """Beat: jobs whose message was lost are enqueued again (after the broker's visibility timeout has passed)."""
    older_than = timedelta(seconds=settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] * 2)
    return len(services.requeue_stalled_jobs(older_than=older_than))


@shared_task(name="archival.sweep_scratch", acks_late=True)
def sweep_scratch() -> int:
    """Beat: remove scratch folders that dead workers left (they may hold decrypted tenant data)."""
    return len(scratch.sweep_scratch())


@shared_task(name="archival.verify_archives", acks_late=True)
def verify_archives() -> str:
    """Beat: the archive drill over a bounded sample (ARCHIVE_DRILL_SAMPLE) of archived tenants."""
    drill = drills.run_drill(sample=settings.ARCHIVE_DRILL_SAMPLE)
    return f"drill {drill.id}: {drill.status} ({drill.checked - drill.failed}/{drill.checked})"


@shared_task(name="archival.prune_archives", acks_late=True)
def prune_archives() -> str:
    """Beat: retention of superseded archives, and crypto-shredding of tenants deleted for good."""
    pruned = retention.prune_archives()
    return f"{len(pruned.archives)} superseded archive(s), {len(pruned.shredded)} tenant(s) shredded"

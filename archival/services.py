"""Archive and restore a tenant's RocksDB: the public surface (requests, runs, the drill, the cold sweep).

Every step is idempotent and safe to re-run after a crash anywhere; the steps live in :mod:`archival.archive`
(evict through the pod if loaded, lease, upload, verify, mark archived, delete) and :mod:`archival.restore`, the job
plumbing they share in :mod:`archival.jobs`, the byte pipelines in :mod:`archival.pipeline`.

Crash-injection points (``archival.jobs.STEP_HOOK``, a callable(step_name, job) that raises;
``ARCHIVAL_STEP_DELAY="name=seconds"`` slows a worker for kill tests): ``before_upload``, ``after_upload``,
``after_verify``, ``after_state``, ``after_delete`` for archives; ``before_place``, ``after_place`` for restores.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path

from archival import archive, restore, rocks
from archival.jobs import (
    ARCHIVE_ACTOR,
    RESTORE_ACTOR,
    SCRATCH_DIR,
    ArchivalError,
    LeaseLost,
    TransientArchivalError,
    create_job,
    enqueue_job,
    run,
)
from archival.models import ArchivalJob, JobType
from archival.selectors import cold_tenants_due, latest_archive, stalled_jobs
from core.audit import Actor
from core.errors import Conflict
from tenants.models import State, Tenant, TenantState

log = logging.getLogger(__name__)

__all__ = [
    "ARCHIVE_ACTOR",
    "RESTORE_ACTOR",
    "SCRATCH_DIR",
    "ArchivalError",
    "LeaseLost",
    "TransientArchivalError",
    "archive_request",
    "archive_run",
    "restore_request",
    "restore_run",
    "sweep_cold_tenants",
    "verify_archive",
]


def archive_request(*, tenant_id: uuid.UUID | str, actor: Actor, enqueue: bool = True) -> ArchivalJob:
    """Create the archive job and enqueue it; Conflict if a job is active or the tenant is archived/restoring.

    A hot or warm tenant is accepted when its pod is recorded: the job first has that pod evict it
    (:func:`archival.archive.evict_from_pod`, which checks again, since the state may change before the job runs).
    """

    def has_pod(state: TenantState) -> None:
        if state.state in (State.HOT, State.WARM) and not state.pod_id:
            raise Conflict(
                f"tenant {state.tenant_id} is {state.state} but no pod is recorded for it, so it cannot be evicted "
                f"for archiving"
            )

    return create_job(
        tenant_id=tenant_id,
        job_type=JobType.ARCHIVE,
        allowed={State.COLD, State.HOT, State.WARM},
        actor=actor,
        enqueue=enqueue,
        check=has_pod,
    )


def restore_request(
    *, tenant_id: uuid.UUID | str, actor: Actor, enqueue: bool = True, verify: bool = False
) -> ArchivalJob:
    """Create the restore job for an archived tenant and enqueue it.

    The restore is proven by the seal (every chunk authenticated and bound to the tenant, the object's seal id
    matching the manifest) and by RocksDB opening the result; ``verify`` also reads every key and value back and
    compares the digest recorded when the archive was made (what the drills do), at about twice the time."""
    if latest_archive(tenant_id) is None and Tenant.objects.filter(pk=tenant_id).exists():
        raise Conflict(f"tenant {tenant_id} has no completed archive to restore")
    return create_job(
        tenant_id=tenant_id,
        job_type=JobType.RESTORE,
        allowed={State.ARCHIVED, State.RESTORING},
        actor=actor,
        enqueue=enqueue,
        manifest={"verify": True} if verify else None,
    )


def archive_run(*, job_id: uuid.UUID | str) -> ArchivalJob:
    """Run (or resume) an archive job to completion; raises ArchivalError/TransientArchivalError on failure."""
    return run(job_id, JobType.ARCHIVE, archive.body, archive.on_fail)


def restore_run(*, job_id: uuid.UUID | str) -> ArchivalJob:
    """Run (or resume) a restore job to completion."""
    return run(job_id, JobType.RESTORE, restore.body, restore.on_fail)


def verify_archive(*, job: ArchivalJob, scratch_root: Path | None = None) -> rocks.RocksDigest:
    """Restore drill: open the archive into a scratch directory and compare digests; live data is never touched."""
    return restore.drill(job, scratch_root)


def sweep_cold_tenants(
    *, limit: int = 100, dry_run: bool = False, actor: Actor = ARCHIVE_ACTOR, older_than_days: int | None = None
) -> list[uuid.UUID]:
    """Request archives for cold tenants idle past the policy, oldest first, at most ``limit`` per run."""
    requested: list[uuid.UUID] = []
    for state in cold_tenants_due(older_than_days=older_than_days, limit=limit):
        if dry_run:
            requested.append(state.tenant_id)
            continue
        try:
            archive_request(tenant_id=state.tenant_id, actor=actor)
        except Conflict as exc:
            log.info("sweep: skipping %s: %s", state.tenant_id, exc)
            continue
        requested.append(state.tenant_id)
    return requested


def requeue_stalled_jobs(*, older_than: timedelta) -> list[uuid.UUID]:
    """Enqueue again the jobs whose message was lost (pending or running for longer than a task can take: a broker
    restart, a purged queue). Safe with a live worker: the per-job run lock lets only one of them run it."""
    stalled = list(stalled_jobs(older_than=older_than).values_list("id", "job_type"))
    for job_id, job_type in stalled:
        log.warning("requeueing stalled %s job %s", job_type, job_id)
        enqueue_job(job_type, job_id)
    return [job_id for job_id, _ in stalled]

"""Job plumbing shared by archive and restore: errors, job creation, the per-job run lock, stage bookkeeping,
failure and completion (each with its audit row), scratch space and the crash-injection hook."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from archival import objectstore, rocks, tarball
from archival.models import ArchivalJob, JobStatus, JobType
from archival.selectors import active_job
from core import sealed
from core.audit import Actor, audit_write
from core.enqueue import task_named
from core.errors import Conflict, NotFound, PlatformError
from moves.selectors import active_move
from tenants.models import Tenant, TenantState

log = logging.getLogger("archival.services")

ARCHIVE_ACTOR = Actor.system("task:archive")
RESTORE_ACTOR = Actor.system("task:restore")
SCRATCH_DIR = ".archival"


class ArchivalError(PlatformError):
    """A permanent failure: retrying will not help (refused state, corrupted or mismatching archive)."""

    code = "archival_failed"
    http_status = 409


class TransientArchivalError(ArchivalError):
    """The object store or another dependency failed; the task retries with backoff."""

    code = "archival_transient"
    http_status = 503


class LeaseLost(ArchivalError):
    code = "lease_lost"


# The crash-injection seam: tests set this to a callable(step_name, job) that raises to simulate a crash at that
# point (the step names are listed in archival.services' docstring).
STEP_HOOK: Callable[[str, ArchivalJob], None] | None = None


def step(name: str, job: ArchivalJob) -> None:
    """A named point between steps: tests inject crashes here (``STEP_HOOK``), and
    ``ARCHIVAL_STEP_DELAY="name=seconds"`` slows a worker there for kill tests."""
    if STEP_HOOK is not None:
        STEP_HOOK(name, job)
    spec = os.environ.get("ARCHIVAL_STEP_DELAY", "")
    for item in filter(None, spec.split(",")):
        where, _, seconds = item.partition("=")
        if where == name:
            log.warning("archival: sleeping %ss at step %s (ARCHIVAL_STEP_DELAY)", seconds, name)
            time.sleep(float(seconds))


def scratch_dir(job_id: uuid.UUID) -> Path:
    return Path(settings.TENANT_DATA_ROOT) / SCRATCH_DIR / str(job_id)


def rmtree(path: Path) -> None:
    if path.exists() or path.is_symlink():
        shutil.rmtree(path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------------------- requests


TASKS = {JobType.ARCHIVE: "archival.archive_tenant", JobType.RESTORE: "archival.restore_tenant"}


def enqueue_job(job_type: str, job_id: uuid.UUID) -> None:
    """Send the job's task once the current transaction commits (by task name: see core.enqueue)."""
    task = task_named(TASKS[JobType(job_type)])
    transaction.on_commit(lambda: task.delay(str(job_id)))


def create_job(
    *,
    tenant_id: uuid.UUID | str,
    job_type: str,
    allowed: set[str],
    actor: Actor,
    enqueue: bool,
    check: Callable[[TenantState], None] | None = None,
    manifest: dict[str, Any] | None = None,
) -> ArchivalJob:
    """One job row per run, under the tenant's row lock; Conflict when another job is active or the state is wrong."""
    with transaction.atomic():
        try:
            tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        except (Tenant.DoesNotExist, ValueError, ValidationError) as exc:
            raise NotFound(f"tenant {tenant_id} does not exist") from exc
        state = TenantState.objects.get(tenant=tenant)
        running = active_job(tenant.id)
        if running is not None:
            raise Conflict(
                f"tenant {tenant.id} already has an active {running.job_type} job {running.id} "
                f"({running.status}); wait for it to finish"
            )
        moving = active_move(tenant.id)
        if moving is not None:
            raise Conflict(
                f"tenant {tenant.id} is moving to tier {moving.to_tier} (move {moving.id}); "
                f"{job_type} it once the move has finished"
            )
        if state.state not in allowed:
            verb = "archived" if job_type == JobType.ARCHIVE else "restored"
            only = "/".join(sorted(allowed))
            raise Conflict(f"tenant {tenant.id} is {state.state}: only {only} tenants can be {verb}")
        if check is not None:
            check(state)
        try:
            with transaction.atomic():
                job = ArchivalJob.objects.create(
                    tenant=tenant, job_type=job_type, status=JobStatus.PENDING, manifest=dict(manifest or {})
                )
        except IntegrityError as exc:
            raise Conflict(f"tenant {tenant.id} already has an active archival job") from exc
        audit_write(
            actor=actor,
            action=f"archival.{job_type}_requested",
            tenant=tenant,
            resource_type="archival_job",
            resource_id=job.id,
            metadata={"state": state.state, **(manifest or {})},
        )
        if enqueue:
            enqueue_job(job_type, job.id)
    return job


# ------------------------------------------------------------------------------------------------------ job plumbing


@contextlib.contextmanager
def _run_lock(job_id: uuid.UUID) -> Iterator[None]:
    """One worker at a time per job (a redelivered task while the first still runs backs off)."""
    if connection.vendor != "postgresql":
        yield
        return
    key = int.from_bytes(hashlib.sha256(f"archival:{job_id}".encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::bigint)", [key])
        (got,) = cursor.fetchone()
    if not got:
        raise Conflict(f"job {job_id} is already being run by another worker")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s::bigint)", [key])


def _begin(job_id: uuid.UUID | str, job_type: str) -> ArchivalJob | None:
    with transaction.atomic():
        try:
            job = ArchivalJob.objects.select_for_update().get(pk=job_id, job_type=job_type)
        except (ArchivalJob.DoesNotExist, ValueError) as exc:
            raise NotFound(f"{job_type} job {job_id} does not exist") from exc
        if job.status == JobStatus.COMPLETED:
            return None
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = job.started_at or timezone.now()
        job.error_message = None
        job.manifest = job.manifest or {}
        try:
            with transaction.atomic():
                job.save(update_fields=["status", "attempts", "started_at", "error_message", "manifest"])
        except IntegrityError as exc:
            raise Conflict(f"job {job.id} cannot run again: tenant {job.tenant_id} has another active job") from exc
    return job


def save(job: ArchivalJob, **fields: Any) -> None:
    """Persist the manifest (the stage record) and any other given fields."""
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=["manifest", *fields.keys()])


def _fail(job: ArchivalJob, exc: BaseException) -> None:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    job.status = JobStatus.FAILED
    job.error_message = f"{type(exc).__name__}: {message}"
    job.save(update_fields=["status", "error_message", "manifest"])
    audit_write(
        actor=ARCHIVE_ACTOR if job.job_type == JobType.ARCHIVE else RESTORE_ACTOR,
        action=f"archival.{job.job_type}_failed",
        tenant=job.tenant,
        resource_type="archival_job",
        resource_id=job.id,
        metadata={"error": job.error_message, "attempts": job.attempts},
    )
    log.warning("archival job %s failed: %s", job.id, job.error_message)


def complete(job: ArchivalJob, actor: Actor) -> None:
    job.status = JobStatus.COMPLETED
    job.completed_at = timezone.now()
    started = job.started_at or job.completed_at
    job.manifest["duration_s"] = round((job.completed_at - started).total_seconds(), 3)
    job.save(update_fields=["status", "completed_at", "manifest"])
    audit_write(
        actor=actor,
        action=f"archival.{job.job_type}_completed",
        tenant=job.tenant,
        resource_type="archival_job",
        resource_id=job.id,
        metadata={k: job.manifest.get(k) for k in ("object_key", "bytes_in", "bytes_out", "entry_count")},
    )


def classify(exc: Exception) -> Exception:
    """Map a library failure to the job's error: the store is transient, a bad object or tree is permanent."""
    if isinstance(exc, objectstore.ObjectStoreError):
        return TransientArchivalError(f"object store ({objectstore.describe()}): {exc}")
    if isinstance(exc, sealed.SealedError | tarball.TarError | rocks.RocksError):
        return ArchivalError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ArchivalError(f"no space left on the tenant data volume ({settings.TENANT_DATA_ROOT}): {exc}")
    return exc


def run(
    job_id: uuid.UUID | str,
    job_type: str,
    body: Callable[[ArchivalJob], None],
    on_fail: Callable[[ArchivalJob, Exception], None],
) -> ArchivalJob:
    """Run ``body`` for the job under its run lock; on failure clean up (``on_fail``), record and re-raise."""
    with _run_lock(uuid.UUID(str(job_id))):
        job = _begin(job_id, job_type)
        if job is None:
            return ArchivalJob.objects.get(pk=job_id)
        try:
            body(job)
        except Exception as raw:
            exc = classify(raw)
            job.refresh_from_db(fields=["status"])
            with contextlib.suppress(Exception):
                on_fail(job, exc)
            _fail(job, exc)
            if exc is raw:
                raise
            raise exc from raw
        return job

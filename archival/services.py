"""Archive and restore a tenant's RocksDB: every step idempotent and safe to re-run after a crash anywhere.

Archive stages, recorded in ``job.manifest["stage"]``::

    leased    generation bumped under the row lock; the tenant is cold, so no pod may open its data
    uploaded  checkpoint -> tar -> zstd -> seal -> upload done; sizes, digests and key id recorded
    verified  the stored object read back: its size and SHA-256 equal what was sealed
    archived  tenant state cold -> archived (with the lease generation) committed
    (job completed once the local copy and all scratch space are gone)

Local data is deleted only after the state says ``archived``: from then on no pod can be handed the tenant (archived
only leads to restoring), so there is no window in which a pod could be warmed onto a directory we just removed.
Restore stages: ``restoring`` (archived -> restoring under our generation), ``placed`` (verified copy renamed into
the tenant directory), then restoring -> warm with a new generation.

Crash-injection points (``STEP_HOOK``; ``ARCHIVAL_STEP_DELAY="name=seconds"`` slows a worker for kill tests):
``before_upload``, ``after_upload``, ``after_verify``, ``after_state``, ``after_delete`` for archives;
``before_place``, ``after_place`` for restores.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from archival import objectstore, rocks, sealed, tarball
from archival.models import ArchivalJob, JobStatus, JobType
from archival.selectors import active_job, latest_archive, tenant_data_dir
from tenants.audit import Actor, audit_write
from tenants.errors import Conflict, NotFound, PlatformError
from tenants.keys import tenant_data_key
from tenants.models import State, Tenant, TenantState
from tenants.services import tenant_state_transition

log = logging.getLogger(__name__)

ARCHIVE_ACTOR = Actor.system("task:archive")
RESTORE_ACTOR = Actor.system("task:restore")
SCRATCH_DIR = ".archival"

# Tests set this to a callable(step_name, job) that raises to simulate a crash at that point.
STEP_HOOK: Callable[[str, ArchivalJob], None] | None = None


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


def _step(name: str, job: ArchivalJob) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(name, job)
    spec = os.environ.get("ARCHIVAL_STEP_DELAY", "")
    for item in filter(None, spec.split(",")):
        step, _, seconds = item.partition("=")
        if step == name:
            log.warning("archival: sleeping %ss at step %s (ARCHIVAL_STEP_DELAY)", seconds, name)
            time.sleep(float(seconds))


def _scratch(job_id: uuid.UUID) -> Path:
    return Path(settings.TENANT_DATA_ROOT) / SCRATCH_DIR / str(job_id)


def _rmtree(path: Path) -> None:
    if path.exists() or path.is_symlink():
        shutil.rmtree(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------------------- requests


def _enqueue(task_name: str, job_id: uuid.UUID) -> None:
    from archival import tasks

    task = {"archive": tasks.archive_tenant, "restore": tasks.restore_tenant}[task_name]
    transaction.on_commit(lambda: task.delay(str(job_id)))


def _create_job(
    *, tenant_id: uuid.UUID | str, job_type: str, allowed: set[str], actor: Actor, enqueue: bool
) -> ArchivalJob:
    with transaction.atomic():
        try:
            tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        except (Tenant.DoesNotExist, ValueError) as exc:
            raise NotFound(f"tenant {tenant_id} does not exist") from exc
        state = TenantState.objects.get(tenant=tenant)
        running = active_job(tenant.id)
        if running is not None:
            raise Conflict(
                f"tenant {tenant.id} already has an active {running.job_type} job {running.id} "
                f"({running.status}); wait for it to finish"
            )
        if state.state not in allowed:
            verb = "archived" if job_type == JobType.ARCHIVE else "restored"
            hint = "; evict it from its pod first" if state.state in (State.HOT, State.WARM) else ""
            raise Conflict(
                f"tenant {tenant.id} is {state.state}: only {'/'.join(sorted(allowed))} tenants can be {verb}{hint}"
            )
        try:
            with transaction.atomic():
                job = ArchivalJob.objects.create(
                    tenant=tenant, job_type=job_type, status=JobStatus.PENDING, manifest={}
                )
        except IntegrityError as exc:
            raise Conflict(f"tenant {tenant.id} already has an active archival job") from exc
        audit_write(
            actor=actor,
            action=f"archival.{job_type}_requested",
            tenant=tenant,
            resource_type="archival_job",
            resource_id=job.id,
            metadata={"state": state.state},
        )
        if enqueue:
            _enqueue(job_type, job.id)
    return job


def archive_request(*, tenant_id: uuid.UUID | str, actor: Actor, enqueue: bool = True) -> ArchivalJob:
    """Create the archive job for a cold tenant and enqueue it; Conflict if not cold or a job is active."""
    return _create_job(
        tenant_id=tenant_id, job_type=JobType.ARCHIVE, allowed={State.COLD}, actor=actor, enqueue=enqueue
    )


def restore_request(*, tenant_id: uuid.UUID | str, actor: Actor, enqueue: bool = True) -> ArchivalJob:
    """Create the restore job for an archived tenant and enqueue it."""
    if latest_archive(tenant_id) is None and Tenant.objects.filter(pk=tenant_id).exists():
        raise Conflict(f"tenant {tenant_id} has no completed archive to restore")
    return _create_job(
        tenant_id=tenant_id,
        job_type=JobType.RESTORE,
        allowed={State.ARCHIVED, State.RESTORING},
        actor=actor,
        enqueue=enqueue,
    )


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


def _save(job: ArchivalJob, **fields: Any) -> None:
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


def _complete(job: ArchivalJob, actor: Actor) -> None:
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


def _classify(exc: Exception) -> Exception:
    if isinstance(exc, objectstore.ObjectStoreError):
        return TransientArchivalError(f"object store ({objectstore.describe()}): {exc}")
    if isinstance(exc, sealed.SealedError | tarball.TarError | rocks.RocksError):
        return ArchivalError(f"{type(exc).__name__}: {exc}")
    return exc


def _run(
    job_id: uuid.UUID | str,
    job_type: str,
    body: Callable[[ArchivalJob], None],
    on_fail: Callable[[ArchivalJob, Exception], None],
) -> ArchivalJob:
    with _run_lock(uuid.UUID(str(job_id))):
        job = _begin(job_id, job_type)
        if job is None:
            return ArchivalJob.objects.get(pk=job_id)
        try:
            body(job)
        except Exception as raw:
            exc = _classify(raw)
            job.refresh_from_db(fields=["status"])
            with contextlib.suppress(Exception):
                on_fail(job, exc)
            _fail(job, exc)
            if exc is raw:
                raise
            raise exc from raw
        return job


# ------------------------------------------------------------------------------------------------------------ archive


def archive_run(*, job_id: uuid.UUID | str) -> ArchivalJob:
    """Run (or resume) an archive job to completion; raises ArchivalError/TransientArchivalError on failure."""
    return _run(job_id, JobType.ARCHIVE, _archive_body, _archive_on_fail)


def _archive_body(job: ArchivalJob) -> None:
    m = job.manifest
    _archive_lease(job)
    if m["stage"] == "leased":
        _archive_upload(job)
    if m["stage"] == "uploaded":
        _archive_verify(job)
    if m["stage"] == "verified":
        _archive_mark_archived(job)
    if m["stage"] == "archived":
        _archive_cleanup(job)


def _archive_lease(job: ArchivalJob) -> None:
    m = job.manifest
    with transaction.atomic():
        st = TenantState.objects.select_for_update().get(tenant_id=job.tenant_id)
        if m.get("stage") == "archived":
            if st.state == State.ARCHIVED and st.generation == m.get("archived_generation"):
                return
            raise LeaseLost(f"tenant {job.tenant_id} left the archived state (now {st.state}) before cleanup")
        if st.state != State.COLD:
            hint = "; evict it from its pod first" if st.state in (State.HOT, State.WARM) else ""
            raise ArchivalError(f"tenant {job.tenant_id} is {st.state}: only cold tenants can be archived{hint}")
        if m.get("lease_generation") == st.generation:
            return
        if m.get("lease_generation") is not None:
            log.warning(
                "archive %s: lease lost (generation %s -> %s); starting over",
                job.id,
                m.get("lease_generation"),
                st.generation,
            )
        st.generation += 1
        st.save(update_fields=["generation", "updated_at"])
        audit_write(
            actor=ARCHIVE_ACTOR,
            action="tenant.archive_lease",
            tenant=job.tenant,
            resource_type="tenant_state",
            resource_id=job.tenant_id,
            metadata={"job": str(job.id), "generation": st.generation},
        )
        m.clear()
        m.update(stage="leased", lease_generation=st.generation)
        _save(job)


def _archive_upload(job: ArchivalJob) -> None:
    m = job.manifest
    live = tenant_data_dir(job.tenant_id)
    scratch = _scratch(job.id)
    _rmtree(scratch)
    scratch.mkdir(parents=True)
    source = scratch / "db"
    if live.is_dir() and rocks.is_rocksdb(live):
        rocks.checkpoint(live, source)
    elif live.is_dir() and any(live.iterdir()):
        raise ArchivalError(f"{live} is not a RocksDB directory; refusing to archive it")
    else:
        source.mkdir()
    digest = rocks.digest(source)
    key_id, key = tenant_data_key(tenant_id=job.tenant_id)
    object_key = objectstore.archive_key(job.tenant_id, job.id)
    _step("before_upload", job)
    threads = int(getattr(settings, "ARCHIVE_ZSTD_THREADS", 0))

    def produce(out: BinaryIO) -> tuple[sealed.SealStats, int]:
        writer = sealed.SealWriter(
            dst=out, tenant_id=job.tenant_id, kind=sealed.KIND_ARCHIVE, key_id=key_id, key=key, threads=threads
        )
        with writer:
            entries = tarball.write_tar(source, writer)
        assert writer.stats is not None
        return writer.stats, entries

    (stats, entries), _ = tarball.piped(produce, lambda src: objectstore.upload(object_key, src))
    size_on_disk = rocks.dir_size(source)
    m.update(
        stage="uploaded",
        object_key=object_key,
        bucket=objectstore.bucket_name(),
        key_id=key_id,
        bytes_in=stats.bytes_in,
        bytes_out=stats.bytes_out,
        sha256=stats.sha256,
        tar_entries=entries,
        entry_count=digest.entry_count,
        rocks_digest=digest.digest,
        data_bytes=size_on_disk,
        had_local_data=live.is_dir(),
        format=f"sealed-v{sealed.VERSION}+tar+zstd{sealed.ZSTD_LEVEL}",
    )
    _save(job, s3_key=object_key, s3_bucket=m["bucket"], data_size_mb=math.ceil(size_on_disk / (1 << 20)))
    _step("after_upload", job)


def _archive_verify(job: ArchivalJob) -> None:
    m = job.manifest
    try:
        info = objectstore.stat(m["object_key"])
    except objectstore.ObjectMissing:
        info = None
    if info is None or info.size != m["bytes_out"] or info.sha256 != m["sha256"]:
        found = "missing" if info is None else f"{info.size} bytes, sha256 {info.sha256}"
        m["stage"] = "leased"  # upload again on the next attempt
        _save(job)
        raise TransientArchivalError(
            f"stored object {m['object_key']} does not verify: expected {m['bytes_out']} "
            f"bytes, sha256 {m['sha256']}; found {found}"
        )
    m.update(stage="verified", verified_at=timezone.now().isoformat())
    _save(job)
    _step("after_verify", job)


def _archive_mark_archived(job: ArchivalJob) -> None:
    m = job.manifest
    with transaction.atomic():
        st = TenantState.objects.select_for_update().get(tenant_id=job.tenant_id)
        if st.state != State.COLD or st.generation != m["lease_generation"]:
            raise LeaseLost(
                f"tenant {job.tenant_id} was taken (state {st.state}, generation {st.generation}, "
                f"lease {m['lease_generation']}) before it was marked archived; nothing deleted"
            )
        st = tenant_state_transition(
            tenant_id=job.tenant_id, to_state=State.ARCHIVED, generation=st.generation, actor=ARCHIVE_ACTOR
        )
        TenantState.objects.filter(pk=job.tenant_id).update(
            rocksdb_location=m["object_key"], data_size_mb=job.data_size_mb
        )
        m.update(stage="archived", archived_generation=st.generation)
        _save(job)
    _step("after_state", job)


def _archive_cleanup(job: ArchivalJob) -> None:
    live = tenant_data_dir(job.tenant_id)
    scratch = _scratch(job.id)
    if live.exists():
        scratch.mkdir(parents=True, exist_ok=True)
        trash = scratch / "trash"
        _rmtree(trash)
        os.rename(live, trash)
        _fsync_dir(live.parent)
    _step("after_delete", job)
    _rmtree(scratch)
    _complete(job, ARCHIVE_ACTOR)


def _archive_on_fail(job: ArchivalJob, exc: Exception) -> None:
    m = job.manifest
    if m.get("stage") in ("archived",) or isinstance(exc, TransientArchivalError):
        return  # keep what a retry needs; nothing local is deleted before the state says archived
    _rmtree(_scratch(job.id))
    key = m.get("object_key")
    if key:
        with contextlib.suppress(Exception):
            objectstore.delete(key)
        m["stage"] = "leased" if m.get("lease_generation") else m.get("stage")


# ------------------------------------------------------------------------------------------------------------ restore


def restore_run(*, job_id: uuid.UUID | str) -> ArchivalJob:
    """Run (or resume) a restore job to completion."""
    return _run(job_id, JobType.RESTORE, _restore_body, _restore_on_fail)


def _restore_body(job: ArchivalJob) -> None:
    m = job.manifest
    if "source_job" not in m:
        source = latest_archive(job.tenant_id)
        if source is None:
            raise ArchivalError(f"tenant {job.tenant_id} has no completed archive")
        sm = source.manifest or {}
        m.update(
            {
                k: sm.get(k)
                for k in (
                    "object_key",
                    "bucket",
                    "sha256",
                    "bytes_out",
                    "bytes_in",
                    "key_id",
                    "entry_count",
                    "rocks_digest",
                )
            }
        )
        m["source_job"] = str(source.id)
        _save(job, s3_key=sm.get("object_key"), s3_bucket=sm.get("bucket"), data_size_mb=source.data_size_mb)
    if _restore_lease(job):
        return
    if m["stage"] == "restoring":
        _restore_place(job)
    if m["stage"] == "placed":
        _restore_finish(job)
    _rmtree(_scratch(job.id))
    _complete(job, RESTORE_ACTOR)


def _restore_lease(job: ArchivalJob) -> bool:
    """Hold the tenant in `restoring` under our generation; True when an earlier attempt already finished."""
    m = job.manifest
    with transaction.atomic():
        st = TenantState.objects.select_for_update().get(tenant_id=job.tenant_id)
        if m.get("stage") == "done" and st.generation == m.get("warm_generation"):
            _rmtree(_scratch(job.id))
            _complete(job, RESTORE_ACTOR)
            return True
        if st.state == State.ARCHIVED:
            st = tenant_state_transition(
                tenant_id=job.tenant_id, to_state=State.RESTORING, generation=st.generation, actor=RESTORE_ACTOR
            )
            m.update(stage="restoring", lease_generation=st.generation)
            _save(job)
        elif st.state == State.RESTORING:
            if m.get("lease_generation") != st.generation:
                m.update(stage="restoring", lease_generation=st.generation)  # adopt a restore left half-way
                _save(job)
        else:
            raise ArchivalError(f"tenant {job.tenant_id} is {st.state}: only archived tenants can be restored")
    return False


def _restore_place(job: ArchivalJob) -> None:
    m = job.manifest
    target = tenant_data_dir(job.tenant_id)
    expected = rocks.RocksDigest(m["entry_count"], m["rocks_digest"])
    if target.exists():
        # Ours from an attempt that crashed right after the rename? Only an exact match is adopted.
        if rocks.is_rocksdb(target) and rocks.digest(target) == expected:
            m["stage"] = "placed"
            _save(job)
            return
        raise ArchivalError(f"tenant directory {target} already exists; refusing to overwrite it")
    scratch = _scratch(job.id)
    _rmtree(scratch)
    scratch.mkdir(parents=True)
    staged = scratch / "db"
    staged.mkdir()
    key_id, key = tenant_data_key(tenant_id=job.tenant_id, key_id=m["key_id"])

    def key_for(wanted: str) -> bytes:
        if wanted != key_id:
            raise sealed.SealedError(f"object names key id {wanted}, manifest says {key_id}")
        return key

    def produce(out: BinaryIO) -> sealed.OpenStats:
        with objectstore.open_reader(m["object_key"]) as src:
            return sealed.open_stream(
                src=src, dst=out, tenant_id=job.tenant_id, kind=sealed.KIND_ARCHIVE, key_for=key_for
            )

    opened, _files = tarball.piped(produce, lambda src: tarball.safe_extract(src, staged))
    if opened.bytes_in != m["bytes_out"] or opened.sha256 != m["sha256"]:
        raise ArchivalError(
            f"object {m['object_key']} does not match the manifest: {opened.bytes_in} bytes, "
            f"sha256 {opened.sha256}; expected {m['bytes_out']} bytes, sha256 {m['sha256']}"
        )
    got = rocks.digest(staged)
    if got != expected:
        raise ArchivalError(
            f"restored RocksDB does not match the manifest: {got.entry_count} entries, digest "
            f"{got.digest}; expected {expected.entry_count}, {expected.digest}"
        )
    _step("before_place", job)
    with transaction.atomic():
        st = TenantState.objects.select_for_update().get(tenant_id=job.tenant_id)
        if st.state != State.RESTORING or st.generation != m["lease_generation"]:
            raise LeaseLost(
                f"tenant {job.tenant_id} changed during restore (state {st.state}, generation "
                f"{st.generation}); nothing placed"
            )
        if target.exists():
            raise ArchivalError(f"tenant directory {target} appeared during restore; refusing to overwrite it")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, target)
        _fsync_dir(target.parent)
        m.update(stage="placed", restored_files=_files)
        _save(job)
    _step("after_place", job)


def _restore_finish(job: ArchivalJob) -> None:
    m = job.manifest
    with transaction.atomic():
        st = tenant_state_transition(
            tenant_id=job.tenant_id, to_state=State.WARM, generation=m["lease_generation"], actor=RESTORE_ACTOR
        )
        TenantState.objects.filter(pk=job.tenant_id).update(rocksdb_location=str(tenant_data_dir(job.tenant_id)))
        m.update(stage="done", warm_generation=st.generation)
        _save(job)


def _restore_on_fail(job: ArchivalJob, exc: Exception) -> None:
    m = job.manifest
    if m.get("stage") in ("placed", "done") or isinstance(exc, TransientArchivalError):
        return
    _rmtree(_scratch(job.id))
    gen = m.get("lease_generation")
    if gen is not None:
        with contextlib.suppress(PlatformError), transaction.atomic():
            tenant_state_transition(
                tenant_id=job.tenant_id, to_state=State.ARCHIVED, generation=gen, actor=RESTORE_ACTOR
            )
        m["stage"] = "failed"
        m.pop("lease_generation", None)


# -------------------------------------------------------------------------------------------------------- drills, sweep


def verify_archive(*, job: ArchivalJob, scratch_root: Path | None = None) -> rocks.RocksDigest:
    """Restore drill: open the archive into a scratch directory and compare digests; live data is never touched."""
    import tempfile

    m = job.manifest or {}
    base = scratch_root or Path(settings.TENANT_DATA_ROOT) / SCRATCH_DIR
    base.mkdir(parents=True, exist_ok=True)
    key_id, key = tenant_data_key(tenant_id=job.tenant_id, key_id=m["key_id"])
    with tempfile.TemporaryDirectory(dir=base, prefix="drill-") as tmp:
        staged = Path(tmp) / "db"
        staged.mkdir()

        def produce(out: BinaryIO) -> sealed.OpenStats:
            with objectstore.open_reader(m["object_key"]) as src:
                return sealed.open_stream(
                    src=src,
                    dst=out,
                    tenant_id=job.tenant_id,
                    kind=sealed.KIND_ARCHIVE,
                    key_for=lambda wanted: key if wanted == key_id else b"",
                )

        try:
            opened, _ = tarball.piped(produce, lambda src: tarball.safe_extract(src, staged))
            got = rocks.digest(staged)
        except Exception as exc:
            raise _classify(exc) from exc
        if opened.sha256 != m["sha256"] or opened.bytes_in != m["bytes_out"]:
            raise ArchivalError(f"archive {m['object_key']}: stored object does not match the manifest digest")
        if got != rocks.RocksDigest(m["entry_count"], m["rocks_digest"]):
            raise ArchivalError(
                f"archive {m['object_key']}: restored data does not match the manifest "
                f"({got.entry_count} entries vs {m['entry_count']})"
            )
        return got


def sweep_cold_tenants(
    *, limit: int = 100, dry_run: bool = False, actor: Actor = ARCHIVE_ACTOR, older_than_days: int | None = None
) -> list[uuid.UUID]:
    """Request archives for cold tenants idle past the policy, oldest first, at most ``limit`` per run."""
    from archival.selectors import cold_tenants_due

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

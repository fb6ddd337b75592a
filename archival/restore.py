"""The restore steps and the restore drill.

Stages in ``job.manifest["stage"]``: ``restoring`` (archived -> restoring under our generation), ``placed``
(the verified copy renamed into the tenant directory), ``done`` (restoring -> warm with a new generation).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction

from archival import objectstore, pipeline, rocks
from archival.jobs import (
    RESTORE_ACTOR,
    SCRATCH_DIR,
    ArchivalError,
    LeaseLost,
    TransientArchivalError,
    classify,
    complete,
    fsync_dir,
    rmtree,
    save,
    scratch_dir,
    step,
)
from archival.models import ArchivalJob
from archival.selectors import latest_archive, tenant_data_dir
from core import sealed
from core.errors import PlatformError
from tenants.keys import tenant_data_key
from tenants.models import State, TenantState
from tenants.services import tenant_state_transition

_FROM_SOURCE = (
    "object_key",
    "bucket",
    "sha256",
    "seal_id",
    "bytes_out",
    "bytes_in",
    "key_id",
    "entry_count",
    "rocks_digest",
)


def body(job: ArchivalJob) -> None:
    m = job.manifest
    if "source_job" not in m:
        source = latest_archive(job.tenant_id)
        if source is None:
            raise ArchivalError(f"tenant {job.tenant_id} has no completed archive")
        sm = source.manifest or {}
        m.update({k: sm.get(k) for k in _FROM_SOURCE})
        m["source_job"] = str(source.id)
        save(job, s3_key=sm.get("object_key"), s3_bucket=sm.get("bucket"), data_size_mb=source.data_size_mb)
    if lease(job):
        return
    if m["stage"] == "restoring":
        place(job)
    if m["stage"] == "placed":
        finish(job)
    rmtree(scratch_dir(job.id))
    complete(job, RESTORE_ACTOR)


def lease(job: ArchivalJob) -> bool:
    """Hold the tenant in `restoring` under our generation; True when an earlier attempt already finished."""
    m = job.manifest
    with transaction.atomic():
        st = TenantState.objects.select_for_update().get(tenant_id=job.tenant_id)
        if m.get("stage") == "done" and st.generation == m.get("warm_generation"):
            rmtree(scratch_dir(job.id))
            complete(job, RESTORE_ACTOR)
            return True
        if st.state == State.ARCHIVED:
            st = tenant_state_transition(
                tenant_id=job.tenant_id, to_state=State.RESTORING, generation=st.generation, actor=RESTORE_ACTOR
            )
            m.update(stage="restoring", lease_generation=st.generation)
            save(job)
        elif st.state == State.RESTORING:
            if m.get("lease_generation") != st.generation:
                m.update(stage="restoring", lease_generation=st.generation)  # adopt a restore left half-way
                save(job)
        else:
            raise ArchivalError(f"tenant {job.tenant_id} is {st.state}: only archived tenants can be restored")
    return False


def place(job: ArchivalJob) -> None:
    m = job.manifest
    target = tenant_data_dir(job.tenant_id)
    expected = rocks.RocksDigest(m["entry_count"], m["rocks_digest"])
    if target.exists():
        # Ours from an attempt that crashed right after the rename? Only an exact match is adopted.
        if rocks.is_rocksdb(target) and rocks.digest(target) == expected:
            m["stage"] = "placed"
            save(job)
            return
        raise ArchivalError(f"tenant directory {target} already exists; refusing to overwrite it")
    scratch = scratch_dir(job.id)
    rmtree(scratch)
    try:
        staged = _unpack(job, scratch)
        _place(job, staged, target)
    except Exception:
        rmtree(scratch)  # no decrypted byte outlives a failed attempt, whatever failed
        raise
    step("after_place", job)


def _unpack(job: ArchivalJob, scratch: Path) -> Path:
    """Download, open and untar into scratch; proven by the seal (and RocksDB opening it), or in full (``verify``)."""
    m = job.manifest
    scratch.mkdir(parents=True)
    staged = scratch / "db"
    staged.mkdir()
    got = pipeline.unpack(
        lambda: objectstore.open_reader(m["object_key"]),
        staged,
        tenant_id=job.tenant_id,
        key_for=_key_for(job),
        full_check=bool(m.get("verify")),
        sha256=bool(m.get("verify")) or not m.get("seal_id"),
    )
    check_identity(m, got.opened)
    if got.digest is not None:
        check_digest(m, got.digest)
    m["restored_files"] = got.files
    return staged


def _key_for(job: ArchivalJob) -> Callable[[str], bytes]:
    key_id, key = tenant_data_key(tenant_id=job.tenant_id, key_id=job.manifest["key_id"])

    def key_for(wanted: str) -> bytes:
        if wanted != key_id:
            raise sealed.SealedError(f"object names key id {wanted}, manifest says {key_id}")
        return key

    return key_for


def check_identity(m: dict, opened: sealed.OpenStats) -> None:
    """The object that opened is the one the manifest names: its size, and its seal id (authenticated by the seal,
    so free) or, for archives recorded before seal ids, its SHA-256."""
    seal_id = opened.header.nonce_prefix.hex()
    same = opened.bytes_in == m["bytes_out"] and (
        seal_id == m["seal_id"] if m.get("seal_id") else opened.sha256 == m["sha256"]
    )
    if not same:
        raise ArchivalError(
            f"object {m['object_key']} is not the archive its manifest names: {opened.bytes_in} bytes, seal "
            f"{seal_id}, sha256 {opened.sha256 or '-'}; expected {m['bytes_out']} bytes, seal "
            f"{m.get('seal_id') or '-'}, sha256 {m['sha256']}"
        )


def check_digest(m: dict, got: rocks.RocksDigest) -> None:
    if got != rocks.RocksDigest(m["entry_count"], m["rocks_digest"]):
        raise ArchivalError(
            f"archive {m['object_key']}: restored RocksDB does not match the manifest: {got.entry_count} entries, "
            f"digest {got.digest}; expected {m['entry_count']}, {m['rocks_digest']}"
        )


def _place(job: ArchivalJob, staged: Path, target: Path) -> None:
    m = job.manifest
    step("before_place", job)
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
        fsync_dir(target.parent)
        m.update(stage="placed")
        save(job)


def finish(job: ArchivalJob) -> None:
    m = job.manifest
    with transaction.atomic():
        st = tenant_state_transition(
            tenant_id=job.tenant_id, to_state=State.WARM, generation=m["lease_generation"], actor=RESTORE_ACTOR
        )
        TenantState.objects.filter(pk=job.tenant_id).update(rocksdb_location=str(tenant_data_dir(job.tenant_id)))
        m.update(stage="done", warm_generation=st.generation)
        save(job)


def on_fail(job: ArchivalJob, exc: Exception) -> None:
    m = job.manifest
    if m.get("stage") in ("placed", "done"):
        return
    rmtree(scratch_dir(job.id))  # a retry starts from the object again: scratch holds nothing it needs
    if isinstance(exc, TransientArchivalError):
        return  # keep the lease: the retry restores under it
    gen = m.get("lease_generation")
    if gen is not None:
        with contextlib.suppress(PlatformError), transaction.atomic():
            tenant_state_transition(
                tenant_id=job.tenant_id, to_state=State.ARCHIVED, generation=gen, actor=RESTORE_ACTOR
            )
        m["stage"] = "failed"
        m.pop("lease_generation", None)


def drill(job: ArchivalJob, scratch_root: Path | None = None) -> rocks.RocksDigest:
    """Open the archive into a scratch directory and check everything: the object's SHA-256 and the digest of every
    key and value against the manifest; live data is never touched."""
    m = job.manifest or {}
    base = scratch_root or Path(settings.TENANT_DATA_ROOT) / SCRATCH_DIR
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base, prefix="drill-") as tmp:
        staged = Path(tmp) / "db"
        staged.mkdir()
        try:
            got = pipeline.unpack(
                lambda: objectstore.open_reader(m["object_key"]),
                staged,
                tenant_id=job.tenant_id,
                key_for=_key_for(job),
                full_check=True,
                sha256=True,
            )
        except Exception as exc:
            raise classify(exc) from exc
        if got.opened.sha256 != m["sha256"] or got.opened.bytes_in != m["bytes_out"]:
            raise ArchivalError(f"archive {m['object_key']}: stored object does not match the manifest digest")
        assert got.digest is not None
        check_digest(m, got.digest)
        return got.digest

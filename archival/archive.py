"""The archive steps, each idempotent and resumable from the stage recorded in ``job.manifest["stage"]``::

    (evicted) a hot/warm tenant is evicted through its pod and recorded cold (archival.evict)
    leased    generation bumped under the row lock; the tenant is cold, so no pod may open its data
    uploaded  checkpoint -> tar -> zstd -> seal -> upload done; sizes, digests and key id recorded
    verified  the stored object read back: its size and SHA-256 equal what was sealed
    archived  tenant state cold -> archived (with the lease generation) committed
    (job completed once the local copy and all scratch space are gone)

Local data is deleted only after the state says ``archived``: from then on no pod can be handed the tenant (archived
only leads to restoring), so there is no window in which a pod could be warmed onto a directory we just removed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os

from django.db import transaction
from django.utils import timezone

from archival import evict, objectstore, pipeline, rocks
from archival.jobs import (
    ARCHIVE_ACTOR,
    ArchivalError,
    LeaseLost,
    TransientArchivalError,
    complete,
    fsync_dir,
    rmtree,
    save,
    scratch_dir,
    step,
)
from archival.models import ArchivalJob
from archival.selectors import tenant_data_dir
from core import sealed
from core.audit import audit_write
from tenants.keys import tenant_data_key
from tenants.models import State, TenantState
from tenants.services import tenant_state_transition

log = logging.getLogger("archival.services")

LOADED = (State.HOT, State.WARM)


def body(job: ArchivalJob) -> None:
    m = job.manifest
    lease(job)
    if m["stage"] == "leased":
        upload(job)
    if m["stage"] == "uploaded":
        verify(job)
    if m["stage"] == "verified":
        mark_archived(job)
    if m["stage"] == "archived":
        cleanup(job)


def evict_from_pod(job: ArchivalJob) -> None:
    """A hot or warm tenant: have its pod flush, close and let go of it, then record hot/warm -> cold.

    The HTTP call is made without holding the row lock; the result is applied only if the tenant is still where and
    at the generation we evicted it (or the pod already reported it cold at that generation).
    """
    st = TenantState.objects.get(tenant_id=job.tenant_id)
    if st.state not in LOADED:
        return
    if not st.pod_id:
        raise ArchivalError(
            f"tenant {job.tenant_id} is {st.state} but no pod is recorded for it in tenant state, so it cannot be "
            f"evicted; nothing archived or deleted"
        )
    done = evict.evict(pod_id=st.pod_id, tenant_id=job.tenant_id, generation=st.generation)
    with transaction.atomic():
        now = TenantState.objects.select_for_update().get(tenant_id=job.tenant_id)
        if now.generation != st.generation or (now.state in LOADED and now.pod_id != st.pod_id):
            raise LeaseLost(
                f"tenant {job.tenant_id} changed while pod {st.pod_id} evicted it (now {now.state} on "
                f"{now.pod_id or 'no pod'}, generation {now.generation}, evicted {st.generation}); nothing archived"
            )
        if now.state in LOADED:
            tenant_state_transition(
                tenant_id=job.tenant_id, to_state=State.COLD, generation=st.generation, actor=ARCHIVE_ACTOR
            )
        elif now.state != State.COLD:
            raise LeaseLost(f"tenant {job.tenant_id} became {now.state} while pod {st.pod_id} evicted it")
        audit_write(
            actor=ARCHIVE_ACTOR,
            action="tenant.evicted_for_archive",
            tenant=job.tenant,
            resource_type="tenant_state",
            resource_id=job.tenant_id,
            metadata={"job": str(job.id), "pod_id": st.pod_id, "generation": st.generation, "from": st.state},
        )
        job.manifest["evicted"] = {"pod_id": st.pod_id, "generation": st.generation, "from_state": st.state}
        save(job)
    log.info("archive %s: pod %s evicted tenant %s (was %s)", job.id, done.pod_id, job.tenant_id, st.state)


def lease(job: ArchivalJob) -> None:
    m = job.manifest
    if m.get("lease_generation") is None:
        evict_from_pod(job)  # once, before the lease: a tenant warmed again after it fails the job below
    with transaction.atomic():
        st = TenantState.objects.select_for_update().get(tenant_id=job.tenant_id)
        if m.get("stage") == "archived":
            if st.state == State.ARCHIVED and st.generation == m.get("archived_generation"):
                return
            raise LeaseLost(f"tenant {job.tenant_id} left the archived state (now {st.state}) before cleanup")
        if st.state != State.COLD:
            raise ArchivalError(f"tenant {job.tenant_id} is {st.state}: only cold tenants can be archived")
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
        evicted = m.get("evicted")
        m.clear()
        m.update(stage="leased", lease_generation=st.generation)
        if evicted:
            m["evicted"] = evicted
        save(job)


def upload(job: ArchivalJob) -> None:
    m = job.manifest
    live = tenant_data_dir(job.tenant_id)
    scratch = scratch_dir(job.id)
    rmtree(scratch)
    scratch.mkdir(parents=True)
    source = scratch / "db"
    if live.is_dir() and rocks.is_rocksdb(live):
        rocks.checkpoint(live, source)
    elif live.is_dir() and any(live.iterdir()):
        raise ArchivalError(f"{live} is not a RocksDB directory; refusing to archive it")
    else:
        source.mkdir()
    key_id, key = tenant_data_key(tenant_id=job.tenant_id)
    object_key = objectstore.archive_key(job.tenant_id, job.id)
    step("before_upload", job)
    packed = pipeline.pack(
        source,
        lambda src: objectstore.upload(object_key, src),
        tenant_id=job.tenant_id,
        key_id=key_id,
        key=key,
    )
    size_on_disk = rocks.dir_size(source)
    m.update(
        stage="uploaded",
        object_key=object_key,
        bucket=objectstore.bucket_name(),
        key_id=key_id,
        bytes_in=packed.stats.bytes_in,
        bytes_out=packed.stats.bytes_out,
        sha256=packed.stats.sha256,
        seal_id=packed.stats.seal_id,
        tar_entries=packed.tar_entries,
        entry_count=packed.digest.entry_count,
        rocks_digest=packed.digest.digest,
        data_bytes=size_on_disk,
        had_local_data=live.is_dir(),
        format=f"sealed-v{sealed.VERSION}+tar+zstd{sealed.ZSTD_LEVEL}",
    )
    save(job, s3_key=object_key, s3_bucket=m["bucket"], data_size_mb=math.ceil(size_on_disk / (1 << 20)))
    step("after_upload", job)


def verify(job: ArchivalJob) -> None:
    m = job.manifest
    try:
        info = objectstore.stat(m["object_key"])
    except objectstore.ObjectMissing:
        info = None
    if info is None or info.size != m["bytes_out"] or info.sha256 != m["sha256"]:
        found = "missing" if info is None else f"{info.size} bytes, sha256 {info.sha256}"
        m["stage"] = "leased"  # upload again on the next attempt
        save(job)
        raise TransientArchivalError(
            f"stored object {m['object_key']} does not verify: expected {m['bytes_out']} "
            f"bytes, sha256 {m['sha256']}; found {found}"
        )
    m.update(stage="verified", verified_at=timezone.now().isoformat())
    save(job)
    step("after_verify", job)


def mark_archived(job: ArchivalJob) -> None:
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
        save(job)
    step("after_state", job)


def cleanup(job: ArchivalJob) -> None:
    live = tenant_data_dir(job.tenant_id)
    scratch = scratch_dir(job.id)
    if live.exists():
        scratch.mkdir(parents=True, exist_ok=True)
        trash = scratch / "trash"
        rmtree(trash)
        os.rename(live, trash)
        fsync_dir(live.parent)
    step("after_delete", job)
    rmtree(scratch)
    complete(job, ARCHIVE_ACTOR)


def on_fail(job: ArchivalJob, exc: Exception) -> None:
    m = job.manifest
    if m.get("stage") in ("archived",) or isinstance(exc, TransientArchivalError):
        return  # keep what a retry needs; nothing local is deleted before the state says archived
    rmtree(scratch_dir(job.id))
    key = m.get("object_key")
    if key:
        with contextlib.suppress(Exception):
            objectstore.delete(key)
        m["stage"] = "leased" if m.get("lease_generation") else m.get("stage")

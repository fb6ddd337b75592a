"""Archive and restore on the real services: round trips, refusals, crashes at every step, S3 failing, races."""

import threading
from pathlib import Path

import pytest
from django.db import connection

from archival import jobs, objectstore, rocks, services
from archival.models import ArchivalJob, JobStatus
from archival.selectors import tenant_data_dir
from archival.tests.conftest import SimulatedCrash, s3_storage_config
from core.audit import Actor
from core.errors import Conflict
from tenants.models import State, TenantState
from tenants.services import tenant_state_transition

ACTOR = Actor.system("test:archival")


def archive(tenant) -> ArchivalJob:
    job = services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    return services.archive_run(job_id=job.id)


def restore(tenant) -> ArchivalJob:
    job = services.restore_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    return services.restore_run(job_id=job.id)


def state_of(tenant) -> TenantState:
    return TenantState.objects.get(tenant=tenant)


def assert_archived_once(tenant, job: ArchivalJob, data_root: Path) -> None:
    """The data lives in exactly one place: the verified object; no local copy, scratch or stray object."""
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED, job.error_message
    assert state_of(tenant).state == State.ARCHIVED
    assert not tenant_data_dir(tenant.id).exists()
    assert not (data_root / services.SCRATCH_DIR / str(job.id)).exists()
    info = objectstore.stat(job.manifest["object_key"])
    assert (info.size, info.sha256) == (job.manifest["bytes_out"], job.manifest["sha256"])
    assert objectstore.list_keys(f"tenants/{tenant.id}/archives/") == [job.manifest["object_key"]]


@pytest.mark.parametrize("entries", [None, 0, 1, 3000])
def test_round_trip(db, object_store, data_root, make_tenant, rocks_tenant, entries) -> None:
    tenant = make_tenant()
    if entries is None:
        before = rocks.EMPTY  # a tenant that never wrote anything has no directory at all
    else:
        before = rocks_tenant(tenant, entries, cfs={"facts": {b"k": b"v"}} if entries == 3000 else None)
    generation = state_of(tenant).generation
    job = archive(tenant)
    assert_archived_once(tenant, job, data_root)
    m = job.manifest
    assert m["entry_count"] == before.entry_count and m["rocks_digest"] == before.digest
    assert m["key_id"].startswith("tk-") and m["bytes_in"] > 0 and m["duration_s"] >= 0
    assert state_of(tenant).generation == generation + 2  # the lease, then cold -> archived

    rjob = restore(tenant)
    assert rjob.status == JobStatus.COMPLETED, rjob.error_message
    st = state_of(tenant)
    assert st.state == State.WARM and st.generation == generation + 3
    assert rocks.digest(tenant_data_dir(tenant.id)) == before
    assert not (data_root / services.SCRATCH_DIR / str(rjob.id)).exists()


def test_warm_tenant_without_a_pod_is_refused(db, fs_store, data_root, make_tenant, rocks_tenant) -> None:
    """A hot/warm tenant is evicted through its pod first; with no pod recorded there is nobody to ask."""
    tenant = make_tenant()
    before = rocks_tenant(tenant, 10)
    st = state_of(tenant)
    tenant_state_transition(tenant_id=tenant.id, to_state=State.WARM, generation=st.generation, actor=ACTOR)
    with pytest.raises(Conflict, match="is warm but no pod is recorded for it"):
        services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    assert not ArchivalJob.objects.filter(tenant=tenant).exists()
    assert rocks.digest(tenant_data_dir(tenant.id)) == before


def test_tenant_warmed_without_a_pod_after_request_fails_job_and_keeps_data(
    db, fs_store, data_root, make_tenant, rocks_tenant
) -> None:
    tenant = make_tenant()
    before = rocks_tenant(tenant, 10)
    job = services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    st = state_of(tenant)
    tenant_state_transition(tenant_id=tenant.id, to_state=State.HOT, generation=st.generation, actor=ACTOR)
    with pytest.raises(services.ArchivalError, match="is hot but no pod is recorded for it"):
        services.archive_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "nothing archived or deleted" in job.error_message
    assert (state_of(tenant).state, state_of(tenant).generation) == (State.HOT, st.generation)
    assert rocks.digest(tenant_data_dir(tenant.id)) == before


def test_second_request_while_one_is_active_is_refused(db, fs_store, data_root, make_tenant) -> None:
    tenant = make_tenant()
    first = services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    with pytest.raises(Conflict, match=f"already has an active archive job {first.id}"):
        services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)


def test_restore_without_archive_is_refused(db, fs_store, data_root, make_tenant) -> None:
    tenant = make_tenant()
    with pytest.raises(Conflict, match="no completed archive"):
        services.restore_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)


@pytest.mark.parametrize("step", ["before_upload", "after_upload", "after_verify", "after_state", "after_delete"])
def test_archive_crash_at_each_step_then_rerun(
    db, s3_store, data_root, make_tenant, rocks_tenant, crash_at, step
) -> None:
    tenant = make_tenant()
    before = rocks_tenant(tenant, 500)
    job = services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    crash_at(step)
    with pytest.raises(SimulatedCrash):
        services.archive_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING  # a crash records nothing: the redelivered task resumes
    live = tenant_data_dir(tenant.id)
    if step in ("before_upload", "after_upload", "after_verify"):
        assert rocks.digest(live) == before  # nothing deleted before the archive verified and the state changed
        assert state_of(tenant).state == State.COLD

    job = services.archive_run(job_id=job.id)
    assert job.attempts == 2
    assert_archived_once(tenant, job, data_root)
    assert job.manifest["rocks_digest"] == before.digest
    restore(tenant)
    assert rocks.digest(live) == before


@pytest.mark.parametrize("step", ["before_place", "after_place"])
def test_restore_crash_then_rerun(db, fs_store, data_root, make_tenant, rocks_tenant, crash_at, step) -> None:
    tenant = make_tenant()
    before = rocks_tenant(tenant, 300)
    archive(tenant)
    job = services.restore_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    crash_at(step)
    with pytest.raises(SimulatedCrash):
        services.restore_run(job_id=job.id)
    assert state_of(tenant).state == State.RESTORING
    job = services.restore_run(job_id=job.id)
    assert job.status == JobStatus.COMPLETED
    assert state_of(tenant).state == State.WARM
    assert rocks.digest(tenant_data_dir(tenant.id)) == before
    assert not (data_root / services.SCRATCH_DIR / str(job.id)).exists()


def test_restore_refuses_to_overwrite_existing_directory(db, fs_store, data_root, make_tenant, rocks_tenant) -> None:
    tenant = make_tenant()
    rocks_tenant(tenant, 20)
    archive(tenant)
    squatter = tenant_data_dir(tenant.id)
    squatter.mkdir()
    (squatter / "precious").write_bytes(b"do not touch")
    job = services.restore_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    with pytest.raises(services.ArchivalError, match="already exists; refusing to overwrite"):
        services.restore_run(job_id=job.id)
    assert (squatter / "precious").read_bytes() == b"do not touch"
    assert state_of(tenant).state == State.ARCHIVED
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED


def test_tampered_archive_fails_restore_cleanly(db, fs_store, data_root, make_tenant, rocks_tenant) -> None:
    tenant = make_tenant()
    rocks_tenant(tenant, 200)
    job = archive(tenant)
    path = fs_store / job.manifest["object_key"]
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))
    rjob = services.restore_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    with pytest.raises(services.ArchivalError, match="authentication failed"):
        services.restore_run(job_id=rjob.id)
    rjob.refresh_from_db()
    assert rjob.status == JobStatus.FAILED and "SealedError" in rjob.error_message
    assert state_of(tenant).state == State.ARCHIVED
    assert not tenant_data_dir(tenant.id).exists()
    assert not (data_root / services.SCRATCH_DIR / str(rjob.id)).exists()


def test_another_tenants_archive_is_refused(db, fs_store, data_root, make_tenant, rocks_tenant) -> None:
    victim, attacker = make_tenant(), make_tenant()
    rocks_tenant(victim, 20)
    rocks_tenant(attacker, 30)
    vjob, ajob = archive(victim), archive(attacker)
    (fs_store / vjob.manifest["object_key"]).write_bytes((fs_store / ajob.manifest["object_key"]).read_bytes())
    rjob = services.restore_request(tenant_id=victim.id, actor=ACTOR, enqueue=False)
    with pytest.raises(services.ArchivalError, match="wrong tenant"):
        services.restore_run(job_id=rjob.id)
    assert not tenant_data_dir(victim.id).exists()


def test_s3_unreachable_during_upload_fails_cleanly(
    db, s3_store, data_root, make_tenant, rocks_tenant, settings
) -> None:
    tenant = make_tenant()
    before = rocks_tenant(tenant, 300)
    job = services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)

    def cut_network(step: str, _job: object) -> None:
        if step == "before_upload":  # the store goes away once the checkpoint is taken, as the upload starts
            settings.STORAGES = {**settings.STORAGES, "objects": s3_storage_config(s3_store, "http://127.0.0.1:9")}

    jobs.STEP_HOOK = cut_network
    try:
        with pytest.raises(services.TransientArchivalError, match=r"object store .*127\.0\.0\.1:9"):
            services.archive_run(job_id=job.id)
    finally:
        jobs.STEP_HOOK = None
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "TransientArchivalError" in job.error_message and "upload" in job.error_message
    assert state_of(tenant).state == State.COLD
    assert rocks.digest(tenant_data_dir(tenant.id)) == before  # nothing deleted
    settings.STORAGES = {**settings.STORAGES, "objects": s3_storage_config(s3_store)}
    assert not objectstore.exists(objectstore.archive_key(tenant.id, job.id))
    # The retry (same job, as Celery's autoretry does) completes.
    job = services.archive_run(job_id=job.id)
    assert_archived_once(tenant, job, data_root)


def test_concurrent_requests_produce_one_archive(
    transactional_db, fs_store, data_root, make_tenant, rocks_tenant
) -> None:
    tenant = make_tenant()
    before = rocks_tenant(tenant, 100)
    barrier = threading.Barrier(4)
    jobs: list[ArchivalJob] = []
    refused: list[Exception] = []

    def request() -> None:
        try:
            barrier.wait()
            jobs.append(services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False))
        except Conflict as exc:
            refused.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(jobs) == 1 and len(refused) == 3
    runners = [threading.Thread(target=lambda: _run_quietly(jobs[0].id)) for _ in range(2)]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    job = ArchivalJob.objects.get(pk=jobs[0].id)
    assert_archived_once(tenant, job, data_root)
    assert ArchivalJob.objects.filter(tenant=tenant).count() == 1
    assert job.manifest["rocks_digest"] == before.digest


def _run_quietly(job_id) -> None:
    try:
        services.archive_run(job_id=job_id)
    except Conflict:
        pass  # the other runner holds the job
    finally:
        connection.close()


def test_sweep_requests_only_idle_cold_tenants(
    db, fs_store, data_root, make_tenant, django_capture_on_commit_callbacks
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    idle, fresh = make_tenant(), make_tenant()
    TenantState.objects.filter(tenant=idle).update(last_access_at=timezone.now() - timedelta(days=90))
    assert services.sweep_cold_tenants(dry_run=True) == [idle.id]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sweep_cold_tenants(limit=10) == [idle.id]
    assert state_of(idle).state == State.ARCHIVED  # eager Celery ran the task
    assert state_of(fresh).state == State.COLD


def test_verify_archive_drill(db, fs_store, data_root, make_tenant, rocks_tenant) -> None:
    tenant = make_tenant()
    before = rocks_tenant(tenant, 50)
    job = archive(tenant)
    assert services.verify_archive(job=job) == before
    assert not tenant_data_dir(tenant.id).exists()


def test_a_job_whose_message_was_lost_is_requeued_and_completes(
    db, fs_store, data_root, make_tenant, rocks_tenant, crash_at, django_capture_on_commit_callbacks
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    tenant, fresh = make_tenant(), make_tenant()
    before = rocks_tenant(tenant, 100)
    rocks_tenant(fresh, 10)
    job = services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    crash_at("after_upload")  # the worker died mid-job and its message is gone
    with pytest.raises(SimulatedCrash):
        services.archive_run(job_id=job.id)
    ArchivalJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(hours=5))
    recent = services.archive_request(tenant_id=fresh.id, actor=ACTOR, enqueue=False)  # pending, but just now
    with django_capture_on_commit_callbacks(execute=True):
        requeued = services.requeue_stalled_jobs(older_than=timedelta(hours=4))
    assert requeued == [job.id]
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED and job.manifest["rocks_digest"] == before.digest
    recent.refresh_from_db()
    assert recent.status == JobStatus.PENDING

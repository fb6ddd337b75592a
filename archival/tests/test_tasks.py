"""Tasks: configuration, eager runs, and a real worker SIGKILLed mid-archive whose job a second worker completes."""

import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from archival import objectstore, rocks, services, tasks
from archival.models import ArchivalJob, JobStatus
from archival.selectors import tenant_data_dir
from archival.tests.conftest import S3_ENDPOINT
from core.audit import Actor
from percolate_platform.tests import processes
from tenants.models import State, TenantState

ACTOR = Actor.system("test:tasks")
ROOT = Path(__file__).resolve().parents[2]


def test_task_options() -> None:
    for task in (tasks.archive_tenant, tasks.restore_tenant):
        assert task.acks_late and task.reject_on_worker_lost
        assert services.TransientArchivalError in task.autoretry_for
        assert task.retry_backoff and task.max_retries
    assert tasks.archive_cold_tenants.name == "archival.archive_cold_tenants"


def test_request_enqueues_and_eager_task_runs(
    db, fs_store, data_root, make_tenant, rocks_tenant, django_capture_on_commit_callbacks
) -> None:
    tenant = make_tenant()
    before = rocks_tenant(tenant, 50)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.archive_request(tenant_id=tenant.id, actor=ACTOR)
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    with django_capture_on_commit_callbacks(execute=True):
        rjob = services.restore_request(tenant_id=tenant.id, actor=ACTOR)
    rjob.refresh_from_db()
    assert rjob.status == JobStatus.COMPLETED
    assert rocks.digest(tenant_data_dir(tenant.id)) == before


def test_completed_job_task_is_a_no_op(db, fs_store, data_root, make_tenant, rocks_tenant) -> None:
    tenant = make_tenant()
    rocks_tenant(tenant, 5)
    job = services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    assert tasks.archive_tenant.apply(args=[str(job.id)]).get() == JobStatus.COMPLETED
    assert tasks.archive_tenant.apply(args=[str(job.id)]).get() == JobStatus.COMPLETED
    assert ArchivalJob.objects.get(pk=job.id).attempts == 1


def _worker(queue: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    return processes.celery(processes.worker_args("-Q", queue), env, log, app="archival.tests.worker_app")


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis as the broker")
def test_worker_sigkilled_mid_archive_then_second_worker_completes(
    transactional_db, s3_store, data_root, make_tenant, rocks_tenant, tmp_path
) -> None:
    tenant = make_tenant()
    before = rocks_tenant(tenant, 2000)
    job = services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    env = processes.child_env(S3_ENDPOINT_URL=S3_ENDPOINT, S3_BUCKET=s3_store, TENANT_DATA_ROOT=str(data_root))
    queue = f"archival-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    first = _worker(queue, {**env, "ARCHIVAL_STEP_DELAY": "after_upload=60"}, log)
    second = None
    try:
        from percolate_platform.celery import app

        app.send_task("archival.archive_tenant", args=[str(job.id)], queue=queue)

        def uploaded() -> bool:
            job.refresh_from_db()
            return (job.manifest or {}).get("stage") == "uploaded"

        processes.wait_for(
            uploaded, 20, f"the first worker to upload (log: {log.read_text()[-2000:] if log.exists() else ''})"
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING
        assert rocks.digest(tenant_data_dir(tenant.id)) == before  # killed before anything was deleted

        second = _worker(queue, env, log)

        def completed() -> bool:
            job.refresh_from_db()
            return job.status == JobStatus.COMPLETED

        processes.wait_for(completed, 25, f"the second worker to complete the job (log: {log.read_text()[-3000:]})")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
    assert job.attempts == 2
    assert TenantState.objects.get(tenant=tenant).state == State.ARCHIVED
    assert not tenant_data_dir(tenant.id).exists()
    assert objectstore.stat(job.manifest["object_key"]).sha256 == job.manifest["sha256"]
    assert job.manifest["rocks_digest"] == before.digest

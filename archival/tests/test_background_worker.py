"""Archiving runs in a real worker, as under `make run`: the admin's request returns at once with the job pending,
the worker completes it; on the embedded default's filesystem broker as on Redis."""

import os
import time
import uuid

import pytest

from archival.models import ArchivalJob, JobStatus
from percolate_platform.celery import app
from percolate_platform.tests import processes
from tenants.models import State, TenantState


@pytest.fixture
def not_eager():
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = eager


def _job_done(tenant, log):
    def done() -> bool:
        job = ArchivalJob.objects.filter(tenant=tenant).first()
        return job is not None and job.status == JobStatus.COMPLETED

    processes.wait_for(done, 40, lambda: f"the worker to complete the archive (log: {log.read_text()[-3000:]})")
    assert TenantState.objects.get(tenant=tenant).state == State.ARCHIVED


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis as the broker")
def test_admin_archive_returns_at_once_and_the_redis_worker_runs_it(
    transactional_db, fs_store, data_root, make_tenant, rocks_tenant, admin_client_root, not_eager, tmp_path
) -> None:
    tenant = make_tenant()
    rocks_tenant(tenant, 200)
    queue = f"admin-test-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    try:
        started = time.monotonic()
        response = admin_client_root.post(
            "/admin/tenants/tenant/", {"action": "archive_now", "_selected_action": [str(tenant.pk)]}, follow=True
        )
        took = time.monotonic() - started
    finally:
        app.conf.task_default_queue = "celery"
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert "1 archive(s) enqueued." in messages
    assert any("/admin/archival/archivaljob/" in m for m in messages)
    # Nothing ran in the request: no worker is up yet, the job waits in the queue.
    assert ArchivalJob.objects.get(tenant=tenant).status == JobStatus.PENDING
    assert took < 5
    env = processes.child_env(OBJECT_STORE_ROOT=str(fs_store), TENANT_DATA_ROOT=str(data_root))
    env.pop("S3_ENDPOINT_URL", None)
    log = tmp_path / "worker.log"
    worker = processes.celery(processes.worker_args("-Q", queue), env, log)
    with processes.running(worker):
        _job_done(tenant, log)


def test_command_enqueues_on_the_filesystem_broker_and_the_worker_runs_it(
    transactional_db, fs_store, data_root, make_tenant, rocks_tenant, tmp_path
) -> None:
    tenant = make_tenant()
    rocks_tenant(tenant, 200)
    var = tmp_path / "var"
    env = processes.child_env(embedded_broker=var, OBJECT_STORE_ROOT=str(fs_store), TENANT_DATA_ROOT=str(data_root))
    env.pop("S3_ENDPOINT_URL", None)
    result = processes.manage(["archive_tenant", str(tenant.id)], env)
    assert result.returncode == 0, result.stderr
    assert "pending" in result.stdout
    assert len(list((var / "celery" / "queue").iterdir())) == 1  # the message, as a file
    log = tmp_path / "worker.log"
    worker = processes.celery(processes.worker_args(), env, log)
    with processes.running(worker):
        _job_done(tenant, log)
    assert not list((var / "celery" / "queue").iterdir())

"""Archiving a hot or warm tenant evicts it through its pod first (issue 4, item 5), against a real tier node
process (``python -m tiernode``) that writes the tenant's RocksDB exactly as a pod does."""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from archival import rocks, services
from archival.models import ArchivalJob, JobStatus
from archival.selectors import tenant_data_dir
from core.audit import Actor
from core.pod_credentials import proxy_credential
from tenants.models import AuditLog, State, TenantState
from tenants.services import tenant_state_transition

ACTOR = Actor.system("test:archival-evict")
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TierNode:
    """A real tier node subprocess on the test's data root; no PLATFORM_URL, so it sends no reports."""

    def __init__(self, data_root: Path, objects: Path, *, tier: str = "B") -> None:
        self.tier = tier
        self.port = _free_port()  # the internal listener: the pod's address in tenant state, where workers call
        self.public_port = _free_port()
        self.pod_id = f"127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("S3_") and k != "PLATFORM_URL"}
        env.update(
            PERCOLATE_TENANT_TIER=tier,
            PORT=str(self.public_port),
            INTERNAL_PORT=str(self.port),
            HOST="127.0.0.1",
            POD_ID=self.pod_id,
            TENANT_DATA_ROOT=str(data_root),
            OBJECT_STORE_ROOT=str(objects),
            PLATFORM_SERVICE_TOKEN=settings.PLATFORM_SERVICE_TOKEN,
            LOG_LEVEL="warning",
            PYTHONPATH=str(REPO),
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tiernode"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.call("GET", "/ready")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()  # before reading: a live process never ends its output
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                self.stop()
                pytest.fail(f"tier node did not become ready:\n{out}")
            time.sleep(0.05)

    def call(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None, *, port: int = 0
    ) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=10)
        try:
            hdrs = {
                "authorization": f"Bearer {settings.PLATFORM_SERVICE_TOKEN}",
                "content-type": "application/json",
                **(headers or {}),
            }
            conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw) if raw.startswith(b"{") else {"raw": raw.decode()}
        finally:
            conn.close()

    def chat(self, tenant_id: uuid.UUID, generation: int, text: str) -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": text}]}
        headers = {
            "x-percolate-tenant": str(tenant_id),
            "x-percolate-generation": str(generation),
            "authorization": f"Bearer {proxy_credential(settings.PLATFORM_SERVICE_TOKEN)}",
        }
        status, doc = self.call("POST", "/v1/chat/completions", body, headers, port=self.public_port)
        assert status == 200, doc

    def states(self) -> dict[str, str]:
        status, doc = self.call("GET", "/internal/tenants")
        assert status == 200, doc
        return {t["tenant_id"]: t["state"] for t in doc["tenants"]}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def tier_node(data_root: Path, tmp_path: Path) -> Iterator[TierNode]:
    node = TierNode(data_root, tmp_path / "node-objects")
    yield node
    node.stop()


def _hot_on(node: TierNode, tenant) -> TenantState:
    """Warm the tenant on the node at its current generation, write some memory, record it hot on that pod."""
    st = TenantState.objects.get(tenant=tenant)
    status, doc = node.call("POST", f"/internal/warm/{tenant.id}", {"generation": st.generation})
    assert status == 200 and doc["state"] == "hot", doc
    for i in range(20):
        node.chat(tenant.id, st.generation, f"My name is Ada. Remember that note {i} matters. I like tea.")
    assert node.states()[str(tenant.id)] == "hot"
    return tenant_state_transition(
        tenant_id=tenant.id, to_state=State.HOT, generation=st.generation, actor=ACTOR, pod_id=node.pod_id
    )


def test_archiving_a_hot_tenant_evicts_it_through_its_pod(db, fs_store, data_root, make_tenant, tier_node) -> None:
    tenant = make_tenant()
    hot = _hot_on(tier_node, tenant)

    job = services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    job = services.archive_run(job_id=job.id)

    assert job.status == JobStatus.COMPLETED, job.error_message
    assert tier_node.states().get(str(tenant.id)) not in ("hot", "warm")  # the node let go of it
    assert job.manifest["evicted"] == {"pod_id": tier_node.pod_id, "generation": hot.generation, "from_state": "hot"}
    st = TenantState.objects.get(tenant=tenant)
    assert st.state == State.ARCHIVED and st.pod_id is None
    assert st.generation == hot.generation + 2  # hot -> cold keeps it; the lease and cold -> archived bump it
    assert not tenant_data_dir(tenant.id).exists()
    actions = set(AuditLog.objects.filter(tenant=tenant).values_list("action", flat=True))
    assert {"tenant.evicted_for_archive", "tenant.state_changed", "tenant.archive_lease"} <= actions
    # 20 exchanges (user + assistant), the owner marker, facts and preferences: what the node wrote is what we keep.
    assert job.manifest["entry_count"] >= 41

    rjob = services.restore_run(job_id=services.restore_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False).id)
    assert rjob.status == JobStatus.COMPLETED, rjob.error_message
    from tiernode.store import TenantStore

    store = TenantStore(data_root, tenant.id)  # the tier node's own reader opens the restored data
    try:
        assert store.message_count == 40
        assert store.facts["name"] == "Ada" and store.preferences["tea"] == "like"
    finally:
        store.close()
    assert rocks.digest(tenant_data_dir(tenant.id)).digest == job.manifest["rocks_digest"]


def test_stale_generation_at_the_pod_fails_the_job_and_keeps_data(
    db, fs_store, data_root, make_tenant, tier_node
) -> None:
    tenant = make_tenant()
    hot = _hot_on(tier_node, tenant)
    # The pod was handed a newer generation than the platform records (it answers 409 to the old one).
    status, _ = tier_node.call("POST", f"/internal/warm/{tenant.id}", {"generation": hot.generation + 1})
    assert status == 200
    job = services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    with pytest.raises(services.ArchivalError, match=rf"pod {tier_node.pod_id} did not evict .* HTTP 409"):
        services.archive_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "nothing archived or deleted" in job.error_message
    st = TenantState.objects.get(tenant=tenant)
    assert (st.state, st.generation, st.pod_id) == (State.HOT, hot.generation, tier_node.pod_id)
    assert tier_node.states()[str(tenant.id)] == "hot"
    assert tenant_data_dir(tenant.id).is_dir()


def test_pod_that_does_not_answer_fails_the_job_and_deletes_nothing(
    db, fs_store, data_root, make_tenant, rocks_tenant, settings
) -> None:
    settings.ARCHIVE_EVICT_TIMEOUT_SECONDS = 2
    tenant = make_tenant()
    before = rocks_tenant(tenant, 50)
    dead = f"127.0.0.1:{_free_port()}"  # nothing listens there
    st = TenantState.objects.get(tenant=tenant)
    hot = tenant_state_transition(
        tenant_id=tenant.id, to_state=State.HOT, generation=st.generation, actor=ACTOR, pod_id=dead
    )
    job = services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    started = time.monotonic()
    with pytest.raises(services.TransientArchivalError, match=rf"pod {dead} did not evict tenant {tenant.id}"):
        services.archive_run(job_id=job.id)
    assert time.monotonic() - started < 10
    job = ArchivalJob.objects.get(pk=job.id)
    assert job.status == JobStatus.FAILED
    assert "Connection refused" in job.error_message and "nothing archived or deleted" in job.error_message
    now = TenantState.objects.get(tenant=tenant)
    assert (now.state, now.generation, now.pod_id) == (State.HOT, hot.generation, dead)
    assert rocks.digest(tenant_data_dir(tenant.id)) == before
    assert "object_key" not in job.manifest

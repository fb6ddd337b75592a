"""Bulk seeding: COPY on PostgreSQL (bulk_create path too), valid rows, one audit row, lazily created data keys."""

import random
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from core.errors import InvalidInput
from tenants import seeding
from tenants.keys import tenant_data_key
from tenants.models import AuditLog, Tenant, TenantKey, TenantState
from tenants.seeding import copy_payloads, generate_rows, tenants_seed, uuid4_hex
from tenants.selectors import cold_tenants_idle, tenant_route

pytestmark = pytest.mark.django_db


def meta(entry: AuditLog) -> dict[str, Any]:
    assert isinstance(entry.metadata, dict)
    return entry.metadata


EMAIL = re.compile(r"^seed-(\d+)-([0-9a-f]{12})@example\.com$")


def _check_seeded(n: int, *, run_token: str) -> None:
    assert Tenant.objects.count() == n
    assert TenantState.objects.count() == n
    assert Tenant.objects.filter(state__isnull=True).count() == 0
    emails = list(Tenant.objects.values_list("email", flat=True))
    assert all(e == e.lower() for e in emails)
    matches = [EMAIL.match(e) for e in emails]
    assert all(matches)
    assert {m.group(2) for m in matches if m} == {run_token}
    assert sorted(int(m.group(1)) for m in matches if m) == list(range(n))
    # Every id is a version-4 UUID.
    assert all(t.version == 4 for t in Tenant.objects.values_list("id", flat=True))
    assert set(Tenant.objects.values_list("status", flat=True)) == {"active"}
    assert set(Tenant.objects.values_list("security_mode", flat=True)) == {"node_based"}
    assert set(TenantState.objects.values_list("generation", flat=True)) == {1}
    # Tier A is kept warm: never cold. Cold tenants have no pod; hot/warm ones have a pod of their tier.
    assert not TenantState.objects.filter(tenant__tier="A", state="cold").exists()
    assert not TenantState.objects.filter(state="cold", pod_id__isnull=False).exists()
    for tier in "ABC":
        live = TenantState.objects.filter(tenant__tier=tier, state__in=["hot", "warm"])
        assert live.exclude(pod_id__startswith=f"tier-{tier.lower()}-").count() == 0
        assert live.exclude(tier_deployment=f"tier-{tier.lower()}").count() == 0
    now = timezone.now()
    assert not TenantState.objects.filter(last_access_at__gt=now).exists()
    assert not TenantState.objects.filter(last_access_at__lt=now - timedelta(days=121)).exists()
    # No data keys: they are created lazily.
    assert not TenantKey.objects.exists()


def test_seed_5000_with_copy(actor: Any) -> None:
    assert connection.vendor == "postgresql" and seeding.uses_copy()
    progress: list[int] = []
    result = tenants_seed(count=5000, batch_size=2000, actor=actor, progress=progress.append, seed=7)
    assert (result.count, result.batches, result.method) == (5000, 3, "copy")
    assert progress == [2000, 2000, 1000]
    assert result.rate_per_s > 0
    _check_seeded(5000, run_token=result.run_token)

    audit = AuditLog.objects.get()
    assert (audit.action, audit.actor, audit.tenant_id) == ("tenants.seeded", actor.label, None)
    assert meta(audit)["created"] == 5000 and meta(audit)["requested"] == 5000
    assert meta(audit)["method"] == "copy" and meta(audit)["batches"] == 3
    assert "error" not in meta(audit)

    # A realistic distribution: A 5%, B 25%, C 70%; mostly cold, some hot/warm; idle spread over 120 days.
    tiers = dict(Tenant.objects.values_list("tier").annotate(n=Count("id")))
    assert 150 <= tiers["A"] <= 350 and 1000 <= tiers["B"] <= 1500 and 3200 <= tiers["C"] <= 3800
    states = dict(TenantState.objects.values_list("state").annotate(n=Count("tenant_id")))
    assert states["cold"] > 4000 and states["warm"] > 200 and states["hot"] > 20
    idle = TenantState.objects.filter(state="cold", last_access_at__lt=timezone.now() - timedelta(days=60)).count()
    assert 1500 <= idle <= 2800
    cold = list(cold_tenants_idle(idle_days=60, limit=500))
    assert len(cold) == 500
    assert [s.last_access_at for s in cold] == sorted(s.last_access_at for s in cold)


def test_seeded_tenants_work_with_services(actor: Any) -> None:
    tenants_seed(count=50, actor=actor)
    tenant = Tenant.objects.first()
    assert tenant is not None
    route = tenant_route(tenant_id=tenant.id)
    assert route is not None and route.tier == tenant.tier and route.generation == 1
    key_id, key = tenant_data_key(tenant_id=tenant.id)
    assert len(key) == 32
    assert tenant_data_key(tenant_id=tenant.id) == (key_id, key)
    assert TenantKey.objects.filter(tenant=tenant).count() == 1


def test_seed_twice_does_not_collide(actor: Any) -> None:
    first = tenants_seed(count=300, actor=actor)
    second = tenants_seed(count=300, actor=actor)
    assert first.run_token != second.run_token
    assert Tenant.objects.count() == 600
    assert AuditLog.objects.filter(action="tenants.seeded").count() == 2


def test_seed_bulk_create_path(actor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The non-PostgreSQL path (SQLite in the embedded default), exercised here on PostgreSQL."""
    monkeypatch.setattr(seeding, "uses_copy", lambda: False)
    result = tenants_seed(count=1500, batch_size=1000, actor=actor, seed=3)
    assert (result.count, result.batches, result.method) == (1500, 2, "bulk_create")
    _check_seeded(1500, run_token=result.run_token)
    assert meta(AuditLog.objects.get())["method"] == "bulk_create"


def test_seed_failure_keeps_whole_batches_and_audits(actor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = seeding._insert_copy
    calls = {"n": 0}

    def flaky(payloads: tuple[str, str]) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            real(payloads)  # the batch's rows are written, then the batch fails: they must be rolled back
            raise RuntimeError("disk full")
        real(payloads)

    monkeypatch.setattr(seeding, "_insert_copy", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        tenants_seed(count=3000, batch_size=1000, actor=actor)
    assert Tenant.objects.count() == 1000
    assert TenantState.objects.count() == 1000
    audit = AuditLog.objects.get()
    assert meta(audit)["created"] == 1000 and meta(audit)["requested"] == 3000
    assert "disk full" in meta(audit)["error"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": 0},
        {"count": -1},
        {"count": True},
        {"count": "10"},
        {"count": 10, "batch_size": 0},
        {"count": 10, "start": -1},
        {"count": 10, "workers": 0},
    ],
)
def test_seed_bad_arguments(actor: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        tenants_seed(actor=actor, **kwargs)
    assert not Tenant.objects.exists()
    assert not AuditLog.objects.exists()


def test_uuid4_hex() -> None:
    ids = uuid4_hex(2000)
    assert len(set(ids)) == 2000
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and parsed.hex == value


def test_copy_payload_format() -> None:
    batch = generate_rows(start=10, count=200, run_token="abcdefabcdef", now=timezone.now(), rng=random.Random(1))
    assert batch.ids == sorted(batch.ids)
    tenants, states = copy_payloads(batch)
    tenant_lines, state_lines = tenants.splitlines(), states.splitlines()
    assert len(tenant_lines) == len(state_lines) == 200
    assert all(len(line.split("\t")) == 5 for line in tenant_lines)
    assert all(len(line.split("\t")) == 6 for line in state_lines)
    cold = [line.split("\t") for line in state_lines if "\tcold\t" in line]
    assert cold and all(parts[3] == r"\N" and parts[4] == r"\N" for parts in cold)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00", line.split("\t")[5]) for line in state_lines)


@pytest.mark.django_db(transaction=True)
def test_seed_parallel_workers_commit_whole_batches(actor: Any) -> None:
    """Outside a transaction, batches are COPYed on several connections, each batch its own transaction."""
    result = tenants_seed(count=5000, batch_size=1000, workers=3, actor=actor, seed=11)
    assert (result.count, result.batches) == (5000, 5)
    _check_seeded(5000, run_token=result.run_token)
    audit = AuditLog.objects.get()
    assert meta(audit)["workers"] == 3 and meta(audit)["created"] == 5000


@pytest.mark.django_db(transaction=True)
def test_seed_parallel_failure_counts_what_committed(actor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = seeding._insert_copy
    calls = {"n": 0}

    def flaky(payloads: tuple[str, str]) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("connection lost")
        real(payloads)

    monkeypatch.setattr(seeding, "_insert_copy", flaky)
    with pytest.raises(RuntimeError, match="connection lost"):
        tenants_seed(count=10_000, batch_size=1000, workers=2, actor=actor)
    created = Tenant.objects.count()
    assert created % 1000 == 0 and 2000 <= created <= 3000
    assert TenantState.objects.count() == created
    audit = AuditLog.objects.get()
    assert meta(audit)["created"] == created and "connection lost" in meta(audit)["error"]


def test_seed_inside_a_transaction_stays_on_the_callers_connection(actor: Any) -> None:
    result = tenants_seed(count=2000, batch_size=500, workers=4, actor=actor)
    assert result.count == 2000
    assert meta(AuditLog.objects.get())["workers"] == 1

"""The tenant state machine: every allowed transition, a sample of forbidden ones, generation fencing, audit rows."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from core.audit import Actor
from core.errors import ForbiddenTransition, InvalidInput, NotFound, StaleGeneration
from tenants.lifecycle import ALLOWED_TRANSITIONS, GENERATION_BUMPING, is_allowed
from tenants.models import AuditLog, State, Tenant, TenantState
from tenants.services import tenant_assign_pod, tenant_state_transition

pytestmark = pytest.mark.django_db

POD = Actor(label="service:tier-node", ip_address="10.0.0.9")

ALLOWED = sorted((src, dst) for src, targets in ALLOWED_TRANSITIONS.items() for dst in targets)
FORBIDDEN = sorted(
    (src, dst) for src, dst in itertools.product(State.values, repeat=2) if src != dst and not is_allowed(src, dst)
)


def _put(tenant: Tenant, state: str, *, generation: int = 3, pod_id: str | None = "tier-b-0") -> TenantState:
    long_ago = timezone.now() - timedelta(days=3)
    TenantState.objects.filter(tenant=tenant).update(
        state=state, generation=generation, pod_id=pod_id, last_access_at=long_ago, last_eviction_at=None
    )
    return TenantState.objects.get(tenant=tenant)


def _transitions(tenant: Tenant) -> list[AuditLog]:
    return list(AuditLog.objects.filter(tenant=tenant, action="tenant.state_changed"))


def test_design_chain_is_allowed() -> None:
    # hot <-> warm -> cold -> archived -> restoring -> warm
    for src, dst in [
        ("hot", "warm"),
        ("warm", "hot"),
        ("warm", "cold"),
        ("cold", "archived"),
        ("archived", "restoring"),
        ("restoring", "warm"),
    ]:
        assert is_allowed(src, dst), (src, dst)
    assert {("cold", "archived"), ("restoring", "warm")} == GENERATION_BUMPING


def test_forbidden_sample_is_not_empty() -> None:
    for pair in [
        ("hot", "archived"),
        ("warm", "archived"),
        ("archived", "hot"),
        ("archived", "warm"),
        ("archived", "cold"),
        ("cold", "restoring"),
        ("restoring", "hot"),
        ("hot", "restoring"),
    ]:
        assert pair in FORBIDDEN


@pytest.mark.parametrize("src,dst", ALLOWED, ids=[f"{s}->{d}" for s, d in ALLOWED])
def test_every_allowed_transition(tenant: Tenant, src: str, dst: str) -> None:
    before = _put(tenant, src, generation=3)
    state = tenant_state_transition(tenant_id=tenant.id, to_state=dst, generation=3, actor=POD)
    stored = TenantState.objects.get(tenant=tenant)
    assert stored.state == dst == state.state
    bumps = (src, dst) in GENERATION_BUMPING
    assert stored.generation == (4 if bumps else 3)
    if dst in ("cold", "archived"):
        assert stored.pod_id is None
    else:
        assert stored.pod_id == "tier-b-0"
    if dst in ("hot", "warm"):
        assert stored.last_access_at > before.last_access_at
    else:
        assert stored.last_access_at == before.last_access_at
    if src in ("hot", "warm") and dst in ("cold", "archived"):
        assert stored.last_eviction_at is not None
    [entry] = _transitions(tenant)
    assert entry.actor == "service:tier-node"
    assert entry.ip_address == "10.0.0.9"
    assert entry.resource_type == "tenant_state"
    assert entry.metadata["changes"]["state"] == [src, dst]
    if bumps:
        assert entry.metadata["changes"]["generation"] == [3, 4]
    else:
        assert "generation" not in entry.metadata["changes"]


@pytest.mark.parametrize("src,dst", FORBIDDEN, ids=[f"{s}->{d}" for s, d in FORBIDDEN])
def test_forbidden_transitions_are_refused_and_change_nothing(tenant: Tenant, src: str, dst: str) -> None:
    before = _put(tenant, src, generation=5)
    with pytest.raises(ForbiddenTransition) as info:
        tenant_state_transition(tenant_id=tenant.id, to_state=dst, generation=5, actor=POD)
    assert info.value.http_status == 409
    after = TenantState.objects.get(tenant=tenant)
    assert (after.state, after.generation, after.pod_id, after.updated_at) == (
        before.state,
        before.generation,
        before.pod_id,
        before.updated_at,
    )
    assert _transitions(tenant) == []


@pytest.mark.parametrize("stale", [1, 2, 4, 100])
def test_stale_generation_is_refused_and_changes_nothing(tenant: Tenant, stale: int) -> None:
    before = _put(tenant, "hot", generation=3)
    with pytest.raises(StaleGeneration) as info:
        tenant_state_transition(tenant_id=tenant.id, to_state="warm", generation=stale, actor=POD)
    assert info.value.http_status == 409
    after = TenantState.objects.get(tenant=tenant)
    assert (after.state, after.generation, after.updated_at) == ("hot", 3, before.updated_at)
    assert _transitions(tenant) == []


def test_stale_generation_is_refused_even_for_an_allowed_move_after_archive(tenant: Tenant) -> None:
    _put(tenant, "cold", generation=1)
    tenant_state_transition(tenant_id=tenant.id, to_state="archived", generation=1, actor=POD)
    # the pod that held generation 1 can no longer report anything
    with pytest.raises(StaleGeneration):
        tenant_state_transition(tenant_id=tenant.id, to_state="restoring", generation=1, actor=POD)
    tenant_state_transition(tenant_id=tenant.id, to_state="restoring", generation=2, actor=POD)
    state = tenant_state_transition(tenant_id=tenant.id, to_state="warm", generation=2, actor=POD)
    assert (state.state, state.generation) == ("warm", 3)
    with pytest.raises(StaleGeneration):
        tenant_state_transition(tenant_id=tenant.id, to_state="hot", generation=2, actor=POD)
    assert len(_transitions(tenant)) == 3


def test_full_cycle_writes_one_audit_row_per_transition(tenant: Tenant) -> None:
    generation = TenantState.objects.get(tenant=tenant).generation
    path = ["warm", "hot", "warm", "cold", "archived", "restoring", "warm", "hot", "cold"]
    for target in path:
        generation = tenant_state_transition(
            tenant_id=tenant.id, to_state=target, generation=generation, actor=POD, pod_id="tier-b-1"
        ).generation
    assert generation == 3
    entries = AuditLog.objects.filter(tenant=tenant, action="tenant.state_changed").order_by("created_at", "id")
    assert entries.count() == len(path)
    assert sorted(e.metadata["changes"]["state"][1] for e in entries) == sorted(path)


def test_same_state_report_is_a_no_op(tenant: Tenant) -> None:
    before = _put(tenant, "hot", generation=2, pod_id="tier-b-0")
    state = tenant_state_transition(tenant_id=tenant.id, to_state="hot", generation=2, actor=POD)
    assert state.state == "hot"
    assert TenantState.objects.get(tenant=tenant).updated_at == before.updated_at
    state = tenant_state_transition(tenant_id=tenant.id, to_state="hot", generation=2, actor=POD, pod_id="tier-b-0")
    assert _transitions(tenant) == []


def test_pod_id_is_recorded_on_warm(tenant: Tenant) -> None:
    _put(tenant, "cold", generation=1, pod_id=None)
    state = tenant_state_transition(tenant_id=tenant.id, to_state="warm", generation=1, actor=POD, pod_id="tier-b-7")
    assert state.pod_id == "tier-b-7"
    assert _transitions(tenant)[0].metadata["changes"]["pod_id"] == [None, "tier-b-7"]


@pytest.mark.parametrize("bad_state", ["frozen", "HOT", "", None, 3])
def test_invalid_state_is_invalid_input(tenant: Tenant, bad_state: object) -> None:
    with pytest.raises(InvalidInput) as info:
        tenant_state_transition(tenant_id=tenant.id, to_state=bad_state, generation=1, actor=POD)
    assert "state" in info.value.fields
    assert _transitions(tenant) == []


@pytest.mark.parametrize("bad_generation", [0, -1, None, "1", 1.0, True])
def test_invalid_generation_is_invalid_input(tenant: Tenant, bad_generation: object) -> None:
    with pytest.raises(InvalidInput) as info:
        tenant_state_transition(tenant_id=tenant.id, to_state="warm", generation=bad_generation, actor=POD)
    assert "generation" in info.value.fields
    assert TenantState.objects.get(tenant=tenant).state == "cold"


@pytest.mark.parametrize("bad_id", ["00000000-0000-0000-0000-000000000000", "garbage"])
def test_unknown_tenant_is_not_found(db: None, bad_id: str) -> None:
    with pytest.raises(NotFound):
        tenant_state_transition(tenant_id=bad_id, to_state="warm", generation=1, actor=POD)


def test_assign_pod_bumps_generation_and_fences_the_old_pod(tenant: Tenant) -> None:
    _put(tenant, "warm", generation=4, pod_id="tier-b-0")
    state = tenant_assign_pod(tenant_id=tenant.id, pod_id="tier-b-3", actor=POD)
    stored = TenantState.objects.get(tenant=tenant)
    assert (state.generation, stored.generation) == (5, 5)
    assert stored.pod_id == "tier-b-3"
    assert stored.tier_deployment == "tier-b"
    [entry] = AuditLog.objects.filter(tenant=tenant, action="tenant.pod_assigned")
    assert entry.metadata["changes"] == {"pod_id": ["tier-b-0", "tier-b-3"], "generation": [4, 5]}
    assert entry.actor == "service:tier-node"
    with pytest.raises(StaleGeneration):
        tenant_state_transition(tenant_id=tenant.id, to_state="hot", generation=4, actor=POD)
    assert tenant_state_transition(tenant_id=tenant.id, to_state="hot", generation=5, actor=POD).state == "hot"


def test_assign_pod_twice_bumps_twice(make_tenant: object) -> None:
    tenant = make_tenant(tier="A")
    tenant_assign_pod(tenant_id=tenant.id, pod_id="tier-a-0", actor=POD)
    state = tenant_assign_pod(tenant_id=tenant.id, pod_id="tier-a-0", actor=POD)
    assert state.generation == 3
    assert state.tier_deployment == "tier-a"
    assert AuditLog.objects.filter(tenant=tenant, action="tenant.pod_assigned").count() == 2

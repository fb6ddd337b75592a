"""A tier move against real tier-node processes: the whole run, each outcome, and the rules of step 1."""

import pytest
from django.core import mail

from archival import services as archival
from archival.models import ArchivalJob, JobStatus, JobType
from core.errors import Conflict, InvalidInput
from moves import services
from moves.models import Move, MoveStatus, Step
from moves.tests.conftest import ACTOR, make_hot, stored_messages
from tenants.models import AuditLog, State, TenantState
from tenants.services import tenant_suspend


def _run(tenant, tier: str) -> Move:
    move = services.tenant_move(tenant_id=tenant.id, tier=tier, actor=ACTOR, reason="test", enqueue=False)
    return services.move_run(move_id=move.id)


def test_hot_tenant_moves_b_to_a_and_the_new_pod_serves_it(
    db, nodes, make_tenant, data_root, django_capture_on_commit_callbacks
) -> None:
    b, a = nodes.start("B"), nodes.start("A")
    tenant = make_tenant(tier="B")
    before = make_hot(b, tenant, 5)
    with django_capture_on_commit_callbacks(execute=True):
        move = _run(tenant, "A")
    assert (move.status, move.step, move.error) == (MoveStatus.COMPLETED, Step.NOTIFIED, "")
    tenant.refresh_from_db()
    st = TenantState.objects.get(tenant=tenant)
    assert tenant.tier == "A" and st.tier_deployment == "tier-a"
    assert (st.state, st.pod_id, st.generation) == (State.HOT, a.pod_id, before.generation + 1)
    assert (move.old_generation, move.new_generation, move.old_pod_id, move.new_pod_id) == (
        before.generation,
        before.generation + 1,
        b.pod_id,
        a.pod_id,
    )
    assert b.states().get(str(tenant.id)) != "hot" and a.states()[str(tenant.id)] == "hot"
    a.chat(tenant.id, st.generation, "Still there?")  # the new pod answers at the new generation
    assert move.duration_ms is not None and move.finished_at is not None
    assert AuditLog.objects.filter(tenant=tenant, action="tenant.moved", resource_id=move.id).exists()
    assert [m.to for m in mail.outbox] == [[tenant.email]] and "Premium" in mail.outbox[0].subject
    status, _ = a.call("POST", f"/internal/evict/{tenant.id}", {"generation": st.generation})
    assert status == 200
    assert stored_messages(data_root, tenant) == 2 * 6  # five exchanges before, one after: none lost


def test_moving_to_the_current_tier_changes_nothing(db, make_tenant) -> None:
    tenant = make_tenant(tier="B")
    before = TenantState.objects.get(tenant=tenant)
    move = services.tenant_move(tenant_id=tenant.id, tier="B", actor=ACTOR)
    assert (move.status, move.step, move.finished_at is not None) == (MoveStatus.COMPLETED, Step.NOOP, True)
    after = TenantState.objects.get(tenant=tenant)
    assert (after.generation, after.state, after.pod_id) == (before.generation, before.state, before.pod_id)


def test_bad_tier_and_unknown_tenant_are_refused(db, make_tenant) -> None:
    tenant = make_tenant(tier="B")
    with pytest.raises(InvalidInput):
        services.tenant_move(tenant_id=tenant.id, tier="Z", actor=ACTOR)
    with pytest.raises(Exception, match="does not exist"):
        services.tenant_move(tenant_id="00000000-0000-0000-0000-000000000000", tier="A", actor=ACTOR)
    assert not Move.objects.exists()


def test_one_move_at_a_time_and_a_repeated_request_returns_the_same_move(db, make_tenant) -> None:
    tenant = make_tenant(tier="B")
    first = services.tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, enqueue=False)
    again = services.tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, enqueue=False)
    assert again.id == first.id
    with pytest.raises(Conflict, match="already moving to tier A"):
        services.tenant_move(tenant_id=tenant.id, tier="C", actor=ACTOR, enqueue=False)
    assert Move.objects.filter(tenant=tenant).count() == 1


def test_a_move_and_an_archive_refuse_each_other(db, make_tenant) -> None:
    archived_first = make_tenant(tier="B")
    job = archival.archive_request(tenant_id=archived_first.id, actor=ACTOR, enqueue=False)
    with pytest.raises(Conflict, match=f"active archive job {job.id}"):
        services.tenant_move(tenant_id=archived_first.id, tier="A", actor=ACTOR, enqueue=False)
    moved_first = make_tenant(tier="B")
    move = services.tenant_move(tenant_id=moved_first.id, tier="A", actor=ACTOR, enqueue=False)
    with pytest.raises(Conflict, match=f"moving to tier A \\(move {move.id}\\)"):
        archival.archive_request(tenant_id=moved_first.id, actor=ACTOR, enqueue=False)
    assert not ArchivalJob.objects.filter(tenant=moved_first).exists()


def test_an_archived_tenant_only_changes_tier(db, nodes, make_tenant) -> None:
    tenant = make_tenant(tier="C")
    TenantState.objects.filter(tenant=tenant).update(state=State.ARCHIVED, generation=4)
    ArchivalJob.objects.create(tenant=tenant, job_type=JobType.ARCHIVE, status=JobStatus.COMPLETED, manifest={})
    move = _run(tenant, "B")  # no pods at all: none is needed
    assert move.status == MoveStatus.COMPLETED
    tenant.refresh_from_db()
    st = TenantState.objects.get(tenant=tenant)
    assert (tenant.tier, st.state, st.generation, st.tier_deployment) == ("B", State.ARCHIVED, 4, "tier-b")


def test_a_suspended_cold_tenant_can_be_moved(db, nodes, make_tenant) -> None:
    a = nodes.start("A")
    tenant = make_tenant(tier="C")
    tenant_suspend(tenant_id=tenant.id, actor=ACTOR, reason="test")
    move = _run(tenant, "A")
    assert move.status == MoveStatus.COMPLETED and move.detail["evict"]["skipped"]
    assert TenantState.objects.get(tenant=tenant).pod_id == a.pod_id


def test_new_tier_without_pods_rolls_back_cleanly(db, nodes, make_tenant, data_root) -> None:
    b = nodes.start("B")
    nodes.none_for("C")
    tenant = make_tenant(tier="B")
    before = make_hot(b, tenant, 3)
    move = _run(tenant, "C")
    assert (move.status, move.failed_step) == (MoveStatus.ROLLED_BACK, Step.WARMED)
    assert "tier C has no pods" in move.error
    tenant.refresh_from_db()
    st = TenantState.objects.get(tenant=tenant)
    assert (tenant.tier, st.tier_deployment, st.state, st.pod_id) == ("B", "tier-b", State.COLD, None)
    assert st.generation == before.generation + 2  # the fence, then the rollback's own
    assert AuditLog.objects.filter(tenant=tenant, action="tenant.move_rolled_back").exists()
    assert not mail.outbox
    # Servable: its old tier loads it at the current generation with everything it had.
    status, doc = b.call("POST", f"/internal/warm/{tenant.id}", {"generation": st.generation})
    assert status == 200, doc
    b.chat(tenant.id, st.generation, "back again")
    assert b.call("POST", f"/internal/evict/{tenant.id}", {"generation": st.generation})[0] == 200
    assert stored_messages(data_root, tenant) == 2 * 4


def test_old_pod_down_the_move_goes_on_fenced_by_generation(db, nodes, make_tenant, data_root) -> None:
    b, a = nodes.start("B"), nodes.start("A")
    tenant = make_tenant(tier="B")
    make_hot(b, tenant, 4)
    b.stop()  # the old pod is gone (its process flushed the WAL-backed store as it stopped)
    move = _run(tenant, "A")
    assert move.status == MoveStatus.COMPLETED, move.error
    assert "unanswered" in move.detail["evict"]
    st = TenantState.objects.get(tenant=tenant)
    assert st.pod_id == a.pod_id
    assert a.call("POST", f"/internal/evict/{tenant.id}", {"generation": st.generation})[0] == 200
    assert stored_messages(data_root, tenant) == 2 * 4


def test_separate_data_roots_copy_verified_then_delete_the_old_copy(db, split_nodes, make_tenant) -> None:
    b, a = split_nodes.start("B"), split_nodes.start("A")
    tenant = make_tenant(tier="B")
    make_hot(b, tenant, 6)
    move = _run(tenant, "A")
    assert move.status == MoveStatus.COMPLETED, move.error
    assert move.detail["copy"]["copied"] and move.detail["copy"]["files"] > 0
    assert not (split_nodes.roots["B"] / str(tenant.id)).exists()
    st = TenantState.objects.get(tenant=tenant)
    assert a.call("POST", f"/internal/evict/{tenant.id}", {"generation": st.generation})[0] == 200
    assert stored_messages(split_nodes.roots["A"], tenant) == 2 * 6


def test_separate_roots_and_old_pod_down_roll_back_keeping_the_data(db, split_nodes, make_tenant) -> None:
    b = split_nodes.start("B")
    split_nodes.start("A")
    tenant = make_tenant(tier="B")
    make_hot(b, tenant, 2)
    b.stop()
    move = _run(tenant, "A")
    assert (move.status, move.failed_step) == (MoveStatus.ROLLED_BACK, Step.EVICTED)
    assert not (split_nodes.roots["A"] / str(tenant.id)).exists()
    assert stored_messages(split_nodes.roots["B"], tenant) == 2 * 2

"""A crash at each step of a move, then a re-run that converges; a failure at each step before the new tier has the
tenant, then a clean rollback; a crash in the middle of the rollback; the sweep that resumes stalled moves."""

from datetime import timedelta

import pytest

from moves import services, tasks
from moves.models import Move, MoveStatus, Step
from moves.tests.conftest import ACTOR, SimulatedCrash, make_hot, stored_messages
from tenants.models import State, TenantState

STEPS = [Step.FENCED, Step.EVICTED, Step.COPIED, Step.SWITCHED, Step.WARMED, Step.CLEANED]


def _crash_at(where: str, exc: BaseException):
    def hook(step: str, _move: object) -> None:
        if step == where:
            raise exc

    return hook


@pytest.mark.parametrize("where", STEPS)
def test_crash_after_each_step_then_a_rerun_completes(db, split_nodes, make_tenant, step_hook, where) -> None:
    b, a = split_nodes.start("B"), split_nodes.start("A")
    tenant = make_tenant(tier="B")
    make_hot(b, tenant, 3)
    move = services.tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, enqueue=False)
    step_hook(_crash_at(where, SimulatedCrash(where)))
    with pytest.raises(SimulatedCrash):
        services.move_run(move_id=move.id)
    move.refresh_from_db()
    assert (move.status, move.step, move.finished_at) == (MoveStatus.RUNNING, where, None)
    step_hook(None)
    assert tasks.move_tenant.apply(args=[str(move.id)]).get() == MoveStatus.COMPLETED
    move.refresh_from_db()
    assert move.attempts == 2
    st = TenantState.objects.get(tenant=tenant)
    assert (st.state, st.pod_id, st.generation) == (State.HOT, a.pod_id, move.new_generation)
    assert a.call("POST", f"/internal/evict/{tenant.id}", {"generation": st.generation})[0] == 200
    assert stored_messages(split_nodes.roots["A"], tenant) == 2 * 3
    assert not (split_nodes.roots["B"] / str(tenant.id)).exists()


@pytest.mark.parametrize("where", [Step.FENCED, Step.EVICTED, Step.COPIED, Step.SWITCHED])
def test_failure_after_each_step_before_warm_rolls_back(db, split_nodes, make_tenant, step_hook, where) -> None:
    b = split_nodes.start("B")
    split_nodes.start("A")
    tenant = make_tenant(tier="B")
    before = make_hot(b, tenant, 3)
    move = services.tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, enqueue=False)
    step_hook(_crash_at(where, RuntimeError(f"injected at {where}")))
    move = services.move_run(move_id=move.id)
    assert move.status == MoveStatus.ROLLED_BACK
    assert move.error == f"RuntimeError: injected at {where}"
    assert move.failed_step == services.steps.ORDER[services.steps.ORDER.index(where) + 1]
    tenant.refresh_from_db()
    st = TenantState.objects.get(tenant=tenant)
    assert (tenant.tier, st.state, st.pod_id, st.generation) == ("B", State.COLD, None, before.generation + 2)
    assert not (split_nodes.roots["A"] / str(tenant.id)).exists()
    assert b.call("POST", f"/internal/warm/{tenant.id}", {"generation": st.generation})[0] == 200
    assert b.call("POST", f"/internal/evict/{tenant.id}", {"generation": st.generation})[0] == 200
    assert stored_messages(split_nodes.roots["B"], tenant) == 2 * 3


def test_failure_after_warm_only_finishes_the_move(db, nodes, make_tenant, step_hook) -> None:
    b, a = nodes.start("B"), nodes.start("A")
    tenant = make_tenant(tier="B")
    make_hot(b, tenant, 1)
    move = services.tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, enqueue=False)
    step_hook(_crash_at(Step.WARMED, RuntimeError("mail server down")))
    with pytest.raises(RuntimeError):
        services.move_run(move_id=move.id)
    move.refresh_from_db()
    assert (move.status, move.step) == (MoveStatus.RUNNING, Step.WARMED)  # never rolled back past the new tier
    step_hook(None)
    assert services.move_run(move_id=move.id).status == MoveStatus.COMPLETED
    assert TenantState.objects.get(tenant=tenant).pod_id == a.pod_id


def test_crash_in_the_middle_of_the_rollback_then_it_finishes(db, nodes, make_tenant, step_hook) -> None:
    b = nodes.start("B")
    nodes.none_for("C")
    tenant = make_tenant(tier="B")
    before = make_hot(b, tenant, 1)
    move = services.tenant_move(tenant_id=tenant.id, tier="C", actor=ACTOR, enqueue=False)
    step_hook(_crash_at("rollback_released", SimulatedCrash("rollback")))
    with pytest.raises(SimulatedCrash):
        services.move_run(move_id=move.id)
    move.refresh_from_db()
    assert (move.status, move.failed_step) == (MoveStatus.ROLLING_BACK, Step.WARMED)
    tenant.refresh_from_db()
    assert tenant.tier == "C"  # switched, not yet switched back
    step_hook(None)
    move = services.move_run(move_id=move.id)
    assert move.status == MoveStatus.ROLLED_BACK
    tenant.refresh_from_db()
    st = TenantState.objects.get(tenant=tenant)
    assert (tenant.tier, st.generation) == ("B", before.generation + 2)
    assert services.move_run(move_id=move.id).status == MoveStatus.ROLLED_BACK  # a re-run changes nothing
    assert TenantState.objects.get(tenant=tenant).generation == before.generation + 2


def test_sweep_runs_stalled_moves_again_and_leaves_fresh_ones(
    db, nodes, make_tenant, django_capture_on_commit_callbacks
) -> None:
    nodes.start("A")
    stalled = services.tenant_move(tenant_id=make_tenant().id, tier="A", actor=ACTOR, enqueue=False)
    fresh = services.tenant_move(tenant_id=make_tenant().id, tier="A", actor=ACTOR, enqueue=False)
    Move.objects.filter(pk=stalled.pk).update(updated_at=stalled.created_at - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):  # eager: the enqueued task runs the move here
        assert tasks.resume_stalled_moves.apply().get() == 1
    stalled.refresh_from_db()
    fresh.refresh_from_db()
    assert (stalled.status, fresh.status) == (MoveStatus.COMPLETED, MoveStatus.PENDING)


def test_task_options() -> None:
    assert tasks.move_tenant.acks_late and tasks.move_tenant.reject_on_worker_lost
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["moves-resume-stalled"]["task"] == tasks.resume_stalled_moves.name

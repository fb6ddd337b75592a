"""The steps of a tier move, each idempotent and recorded (``move.step``) before the next one starts::

    fenced    generation bumped, the tenant off its pod (cold, no pod) and marked moving; gateways told
    evicted   the old pod flushed the tenant, wrote its context blob and let go (at the old generation)
    copied    the data copied to the new tier's root, verified (only when the roots differ)
    switched  tier, tier deployment and route are the new tier's; gateways told
    warmed    a pod of the new tier has the tenant hot at the new generation   <- from here on no rollback
    cleaned   the old copy deleted (only when the data was copied)
    notified  completed: audit row, the tenant's email, the move no longer active; gateways told

An archived tenant has no pod and no local data: it is only switched (its next restore lands on the new tier).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import PlatformError
from moves import data, notify, placement
from moves.models import Move, MoveStatus, Step
from moves.progress import MOVE_ACTOR, audit_move, log, pause_at, record_step
from tenants import pods
from tenants.events import tenant_changed
from tenants.models import State, TenantState
from tenants.services import locked_tenant, tenant_state_transition

WARM_ATTEMPTS = 4
ORDER = (Step.REQUESTED, Step.FENCED, Step.EVICTED, Step.COPIED, Step.SWITCHED, Step.WARMED, Step.CLEANED)
LOADED = (State.HOT, State.WARM)


class MoveFailed(PlatformError):
    code = "move_failed"
    http_status = 409


def reached(move: Move, step: str) -> bool:
    return move.step in ORDER and ORDER.index(move.step) >= ORDER.index(step)


def next_step(move: Move) -> str:
    return ORDER[ORDER.index(move.step) + 1] if move.step in ORDER[:-1] else Step.NOTIFIED


def may_roll_back(move: Move) -> bool:
    """Until a new-tier pod has the tenant; after that the move can only be finished."""
    return not reached(move, Step.WARMED)


def run(move: Move) -> None:
    for step, action in (
        (Step.FENCED, fence),
        (Step.EVICTED, evict),
        (Step.COPIED, copy),
        (Step.SWITCHED, switch),
        (Step.WARMED, warm),
        (Step.CLEANED, clean),
    ):
        if not reached(move, step):
            action(move)
            pause_at(step, move)
    finish(move)


def _archived(move: Move) -> bool:
    return bool(move.detail.get("archived"))


def fence(move: Move) -> None:
    with transaction.atomic():
        tenant = locked_tenant(move.tenant_id)
        st = TenantState.objects.select_for_update().get(tenant=tenant)
        if st.state == State.RESTORING:
            raise MoveFailed(f"tenant {tenant.id} is being restored; move it once the restore has finished")
        from_state, old_pod, old_generation = st.state, st.pod_id or "", st.generation
        move.detail["archived"] = st.state == State.ARCHIVED
        if not _archived(move):
            st.generation += 1
            if st.state in LOADED:
                st.state = State.COLD
                st.last_eviction_at = timezone.now()
            st.pod_id = None
            st.save()
        record_step(
            move,
            Step.FENCED,
            from_state=from_state,
            old_pod_id=old_pod,
            old_generation=old_generation,
            new_generation=st.generation,
        )
        tenant_changed(tenant.id)


def evict(move: Move) -> None:
    if _archived(move) or move.from_state not in LOADED or not move.old_pod_id:
        move.detail["evict"] = {"skipped": f"not loaded on a pod ({move.from_state})"}
    else:
        assert move.old_generation is not None
        try:
            answer = pods.evict(
                move.old_pod_id,
                move.tenant_id,
                generation=move.old_generation,
                timeout=settings.MOVE_EVICT_TIMEOUT_SECONDS,
            )
            move.detail["evict"] = {"pod": move.old_pod_id, "previous_state": answer.doc.get("previous_state")}
        except pods.PodCallFailed as exc:
            if exc.refused:
                raise MoveFailed(f"the old pod refused to let the tenant go: {exc.message}") from exc
            if data.roots_differ(move.from_tier, move.to_tier):
                raise MoveFailed(
                    f"the old pod did not answer and the tiers' data roots differ, so a copy could miss its last "
                    f"writes: {exc.message}"
                ) from exc
            # Same data root: the new pod opens the very same RocksDB only once the old process has let go of it
            # (RocksDB's LOCK file), and the new generation refuses the old pod's reports (see docs/decisions.md).
            log.warning("tier move %s: old pod unanswered, fenced by generation: %s", move.id, exc.message)
            move.detail["evict"] = {"pod": move.old_pod_id, "unanswered": exc.message}
    record_step(move, Step.EVICTED)


def release_old_pod(move: Move) -> None:
    """Evict from the old pod again, at the old generation (best effort): a request a gateway had already routed
    there before the fence reached it may have loaded the tenant again after the first eviction."""
    if _archived(move) or move.from_state not in LOADED or not move.old_pod_id or move.old_generation is None:
        return
    try:
        pods.evict(
            move.old_pod_id, move.tenant_id, generation=move.old_generation, timeout=settings.MOVE_EVICT_TIMEOUT_SECONDS
        )
    except pods.PodCallFailed as exc:
        log.info("tier move %s: evicting again from the old pod: %s", move.id, exc.message)


def _copy(move: Move) -> None:
    try:
        stats = data.copy_tenant(
            tenant_id=move.tenant_id, from_tier=move.from_tier, to_tier=move.to_tier, move_id=move.id
        )
    except OSError as exc:
        raise MoveFailed(f"copying the tenant's data to tier {move.to_tier} failed: {exc}") from exc
    move.detail["copy"] = {"copied": True, **stats}


def copy(move: Move) -> None:
    if _archived(move) or not data.roots_differ(move.from_tier, move.to_tier):
        move.detail["copy"] = {"copied": False}
        record_step(move, Step.COPIED, persist=False)
        return
    _copy(move)
    record_step(move, Step.COPIED)


def _recopy_if_changed(move: Move) -> None:
    """Before the switch: a late write on the old pod since the copy would be lost with the old copy, so the old pod
    lets go again and the copy is redone until the source is what was copied."""
    for _attempt in range(3):
        release_old_pod(move)
        if data.source_digest(move.from_tier, move.tenant_id) == move.detail["copy"].get("source_digest"):
            return
        log.warning("tier move %s: the source changed after the copy; copying again", move.id)
        _copy(move)
    raise MoveFailed("the tenant's data kept changing on the old tier after its eviction")


def switch(move: Move) -> None:
    if move.detail.get("copy", {}).get("copied"):
        _recopy_if_changed(move)
    with transaction.atomic():
        tenant = locked_tenant(move.tenant_id)
        tenant.tier = move.to_tier
        tenant.save(update_fields=["tier", "updated_at"])
        TenantState.objects.filter(tenant=tenant).update(
            tier_deployment=f"tier-{move.to_tier.lower()}", updated_at=timezone.now()
        )
        record_step(move, Step.SWITCHED)
        tenant_changed(tenant.id)


def warm(move: Move) -> None:
    if _archived(move):
        record_step(move, Step.WARMED)
        return
    assert move.new_generation is not None
    candidates = placement.ranked(move.to_tier, move.tenant_id)
    if not candidates:
        raise MoveFailed(f"tier {move.to_tier} has no pods to take the tenant")
    errors: list[str] = []
    for pod in candidates[:3]:
        tried = move.detail.setdefault("warm_tried", [])
        if pod.internal not in tried:
            tried.append(pod.internal)
            move.save(update_fields=["detail", "updated_at"])  # the rollback evicts from every pod it asked
        try:
            answer = _warm_on(move, pod)
        except pods.PodCallFailed as exc:
            errors.append(exc.message)
            if exc.unreachable:
                continue
            break
        with transaction.atomic():
            locked_tenant(move.tenant_id)  # tenant row first, then state: the order the pods' state reports lock in
            st = TenantState.objects.select_for_update().get(tenant_id=move.tenant_id)
            if st.generation != move.new_generation:
                raise MoveFailed(f"the tenant's generation changed during the move ({st.generation})")
            if st.state != State.HOT:
                tenant_state_transition(
                    tenant_id=move.tenant_id,
                    to_state=State.HOT,
                    generation=move.new_generation,
                    actor=MOVE_ACTOR,
                    pod_id=pod.internal,
                )
            move.detail["warm"] = {
                "pod": pod.internal,
                "source": answer.get("source"),
                "load_seconds": answer.get("load_seconds"),
                "attempts": answer.get("attempts"),
            }
            record_step(move, Step.WARMED, new_pod_id=pod.internal)
        return
    raise MoveFailed(f"no pod of tier {move.to_tier} took the tenant: {'; '.join(errors)}")


def _warm_on(move: Move, pod: pods.Pod) -> dict:
    """Warm the tenant on the pod at the new generation. With one data root, the pod cannot open the RocksDB while
    the old pod holds it (a late request loaded it again there): then the old pod lets go again and the warm is
    retried."""
    assert move.new_generation is not None
    for attempt in range(WARM_ATTEMPTS):
        if attempt and not data.roots_differ(move.from_tier, move.to_tier):
            release_old_pod(move)  # only after a refusal: evicting a tenant a pod does not hold still writes a blob
        try:
            answer = pods.warm(
                pod.internal, move.tenant_id, generation=move.new_generation, timeout=settings.MOVE_WARM_TIMEOUT_SECONDS
            )
            return {**answer.doc, "attempts": attempt + 1}
        except pods.PodCallFailed as exc:
            if exc.pod_code != "load_failed" or attempt == WARM_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def clean(move: Move) -> None:
    copied = bool(move.detail.get("copy", {}).get("copied"))
    if copied:
        data.remove_tenant(move.from_tier, move.tenant_id)
    record_step(move, Step.CLEANED, persist=copied)


def finish(move: Move) -> None:
    with transaction.atomic():
        now = timezone.now()
        started = move.started_at or move.created_at
        duration_ms = max(0, int((now - started).total_seconds() * 1000))
        record_step(move, Step.NOTIFIED, status=MoveStatus.COMPLETED, finished_at=now, duration_ms=duration_ms)
        audit_move(move, "tenant.moved", generation=move.new_generation, pod=move.new_pod_id, duration_ms=duration_ms)
        tenant_changed(move.tenant_id)
        transaction.on_commit(lambda: notify.tenant_moved(move))
    log.info("tier move %s: tenant %s now on tier %s (%d ms)", move.id, move.tenant_id, move.to_tier, duration_ms)

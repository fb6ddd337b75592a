"""Rolling a move back after a failure before the new tier had the tenant: the tenant ends on its old tier with a
new generation, its data whole (the old copy is only ever deleted after the new tier opened its copy), and the move
row says which step failed and why. Each part is idempotent; the status ``rolling_back`` is recorded first, so a
worker that dies here is followed by one that finishes the rollback.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from moves import data
from moves.models import Move, MoveStatus
from moves.progress import audit_move, log, pause_at
from moves.steps import next_step
from tenants import pods
from tenants.events import tenant_changed
from tenants.models import State, TenantState
from tenants.services import locked_tenant


def begin(move: Move, exc: BaseException) -> None:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    move.failed_step = next_step(move)
    move.error = f"{type(exc).__name__}: {message}"[:4000]
    move.status = MoveStatus.ROLLING_BACK
    move.save(update_fields=["failed_step", "error", "status", "updated_at"])
    log.warning("tier move %s failed at %s, rolling back: %s", move.id, move.failed_step, move.error)


def run(move: Move) -> None:
    _release_new_pods(move)
    if move.detail.get("copy", {}).get("copied") and data.tenant_dir(move.from_tier, move.tenant_id).exists():
        data.remove_tenant(move.to_tier, move.tenant_id)
    pause_at("rollback_released", move)
    with transaction.atomic():
        tenant = locked_tenant(move.tenant_id)
        st = TenantState.objects.select_for_update().get(tenant=tenant)
        if tenant.tier != move.from_tier:
            tenant.tier = move.from_tier
            tenant.save(update_fields=["tier", "updated_at"])
        st.tier_deployment = f"tier-{move.from_tier.lower()}"
        if move.new_generation is not None and not move.detail.get("archived"):
            # Whatever a new-tier pod may still hold is fenced off, and the old tier loads it on the next request.
            st.generation += 1
            if st.state in (State.HOT, State.WARM):
                st.state = State.COLD
                st.last_eviction_at = timezone.now()
            st.pod_id = None
        st.save()
        now = timezone.now()
        move.status = MoveStatus.ROLLED_BACK
        move.finished_at = now
        move.duration_ms = max(0, int((now - (move.started_at or move.created_at)).total_seconds() * 1000))
        move.detail["rollback"] = {"generation": st.generation}
        move.save(update_fields=["status", "finished_at", "duration_ms", "detail", "updated_at"])
        audit_move(move, "tenant.move_rolled_back", failed_step=move.failed_step, error=move.error)
        tenant_changed(tenant.id)


def _release_new_pods(move: Move) -> None:
    """Have every new-tier pod the move asked to warm let go (best effort; the generation bump fences any other)."""
    if move.new_generation is None:
        return
    for address in move.detail.get("warm_tried", []):
        try:
            pods.evict(
                address, move.tenant_id, generation=move.new_generation, timeout=settings.MOVE_EVICT_TIMEOUT_SECONDS
            )
        except pods.PodCallFailed as exc:
            log.warning("tier move %s rollback: %s", move.id, exc.message)

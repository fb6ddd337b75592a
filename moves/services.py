"""Tier moves: the one service that asks for a move (admin, commands, API and billing call it), and the runner.

``tenant_move`` records the move under the tenant's row lock and enqueues the task; ``move_run`` runs (or resumes)
its steps (:mod:`moves.steps`) and, on a failure before the new tier has the tenant, rolls back
(:mod:`moves.rollback`). Crash-injection points for tests: ``moves.progress.STEP_HOOK`` (a callable(step, move)
called after each recorded step), ``MOVE_STEP_DELAY="step=seconds"`` to slow a worker there for kill tests.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from archival.selectors import active_job
from core.audit import Actor, audit_write
from core.enqueue import task_named
from core.errors import Conflict, InvalidInput, NotFound
from moves import rollback, steps
from moves.models import Move, MoveStatus, Step
from moves.runlock import run_lock
from moves.selectors import active_move, stalled_moves, tenants_to_move
from tenants.models import TenantStatus, Tier
from tenants.services import locked_tenant, require_choice

log = logging.getLogger(__name__)

__all__ = ["move_run", "resume_stalled_moves", "tenant_move", "tenants_move_many"]

MAX_REASON = 1000


def _enqueue(move_id: uuid.UUID) -> None:
    """Send the move's task once the current transaction commits (by task name: see core.enqueue)."""
    task = task_named("moves.move_tenant")
    transaction.on_commit(lambda: task.delay(str(move_id)))


def tenant_move(
    *, tenant_id: uuid.UUID | str, tier: object, actor: Actor, reason: object = "", enqueue: bool = True
) -> Move:
    """Ask for a move of the tenant to ``tier`` and return its row (the task runs it).

    The tenant's active move to the same tier is returned as it is (a retried request starts nothing new); a move to
    another tier while one runs, or while an archive or restore job runs, is a Conflict. Moving to the current tier
    changes nothing: the row says so (``step=noop``, completed at once).
    """
    tier = require_choice("tier", tier, Tier.values)
    reason = str(reason or "").strip()[:MAX_REASON]
    with transaction.atomic():
        tenant = locked_tenant(tenant_id)
        running = active_move(tenant.id)
        if running is not None:
            if running.to_tier == tier:
                return running
            raise Conflict(
                f"tenant {tenant.id} is already moving to tier {running.to_tier} (move {running.id}); wait for it"
            )
        if tenant.status == TenantStatus.DELETED:
            raise Conflict(f"tenant {tenant.id} is deleted; it cannot be moved")
        job = active_job(tenant.id)
        if job is not None:
            raise Conflict(
                f"tenant {tenant.id} has an active {job.job_type} job {job.id}; move it once that job has finished"
            )
        noop = tenant.tier == tier
        now = timezone.now()
        try:
            with transaction.atomic():
                move = Move.objects.create(
                    tenant=tenant,
                    from_tier=tenant.tier,
                    to_tier=tier,
                    reason=reason,
                    requested_by=actor.label,
                    status=MoveStatus.COMPLETED if noop else MoveStatus.PENDING,
                    step=Step.NOOP if noop else Step.REQUESTED,
                    finished_at=now if noop else None,
                    duration_ms=0 if noop else None,
                )
        except IntegrityError as exc:
            raise Conflict(f"tenant {tenant.id} already has an active move") from exc
        audit_write(
            actor=actor,
            action="tenant.move_requested",
            tenant=tenant,
            resource_type="tier_move",
            resource_id=move.id,
            metadata={"from": move.from_tier, "to": tier, "reason": reason, "noop": noop},
        )
        if enqueue and not noop:
            _enqueue(move.id)
    return move


def _begin(move_id: uuid.UUID | str) -> Move | None:
    with transaction.atomic():
        try:
            move = Move.objects.select_for_update().get(pk=move_id)
        except (Move.DoesNotExist, ValueError) as exc:
            raise NotFound(f"move {move_id} does not exist") from exc
        if move.finished_at is not None:
            return None
        if move.status == MoveStatus.PENDING:
            move.status = MoveStatus.RUNNING
        move.attempts += 1
        move.started_at = move.started_at or timezone.now()
        move.save(update_fields=["status", "attempts", "started_at", "updated_at"])
    return move


def move_run(*, move_id: uuid.UUID | str) -> Move:
    """Run or resume the move to its end: completed, or rolled back with the failed step and the error recorded.

    A clean rollback is an outcome, not an exception; an exception escapes only when even the rollback could not be
    recorded (the database is down), and then the periodic sweep runs the move again from its recorded step.
    """
    with run_lock(uuid.UUID(str(move_id))):
        move = _begin(move_id)
        if move is None:
            return Move.objects.get(pk=move_id)
        if move.status == MoveStatus.RUNNING:
            try:
                steps.run(move)
                return move
            except Exception as exc:
                if not steps.may_roll_back(move):
                    raise  # the new tier has the tenant: only the finishing steps are left, retried as they are
                rollback.begin(move, exc)
        rollback.run(move)
        return move


def tenants_move_many(
    *, from_tier: object, to_tier: object, limit: int, actor: Actor, reason: object = ""
) -> tuple[list[Move], list[str]]:
    """Start moves for up to ``limit`` tenants of ``from_tier``: (the moves started, one line per refusal)."""
    from_tier = require_choice("from", from_tier, Tier.values)
    to_tier = require_choice("to", to_tier, Tier.values)
    if from_tier == to_tier:
        raise InvalidInput("--from and --to are the same tier", fields={"to": ["Must differ from the source tier."]})
    started: list[Move] = []
    refused: list[str] = []
    for tenant_id in tenants_to_move(from_tier=from_tier, limit=limit):
        try:
            started.append(tenant_move(tenant_id=tenant_id, tier=to_tier, actor=actor, reason=reason))
        except Conflict as exc:
            refused.append(f"{tenant_id}: {exc.message}")
    return started, refused


def resume_stalled_moves(*, older_than: timedelta) -> list[uuid.UUID]:
    """Enqueue again the unfinished moves nobody is running (worker killed, message lost); the run lock makes a
    duplicate harmless."""
    ids = list(stalled_moves(older_than=older_than).values_list("id", flat=True)[:500])
    for move_id in ids:
        log.warning("resuming stalled tier move %s", move_id)
        _enqueue(move_id)
    return ids

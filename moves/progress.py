"""Bookkeeping the steps share: recording the step reached, the crash-injection hook and delay, the audit row."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from django.utils import timezone

from core.audit import Actor, audit_write
from moves.models import Move

log = logging.getLogger("moves")
MOVE_ACTOR = Actor.system("task:tier-move")


def record_step(move: Move, step: str, *, persist: bool = True, **fields: object) -> None:
    """Persist the step reached (and any fields) before the next step starts, with when it was reached (ms after
    the run started: where a move's time goes). ``persist=False`` is for a step that did nothing (no copy between
    one data root, nothing to clean): the next step's save records it, since redoing nothing after a crash is free."""
    if move.started_at is not None:
        move.detail.setdefault("step_ms", {})[step] = round((timezone.now() - move.started_at).total_seconds() * 1000)
    move.step = step
    for name, value in fields.items():
        setattr(move, name, value)
    if persist:
        move.save(update_fields=["step", "detail", "updated_at", *fields.keys()])


# The crash-injection seam: tests set this to a callable(step, move) that raises to simulate a crash after that step.
STEP_HOOK: Callable[[str, Move], None] | None = None


def pause_at(step: str, move: Move) -> None:
    """Tests inject crashes here (``STEP_HOOK``); ``MOVE_STEP_DELAY="step=seconds"`` slows a worker
    there for kill tests and for watching a move in progress."""
    if STEP_HOOK is not None:
        STEP_HOOK(step, move)
    for item in filter(None, os.environ.get("MOVE_STEP_DELAY", "").split(",")):
        where, _, seconds = item.partition("=")
        if where == step:
            log.warning("tier move: sleeping %ss after step %s (MOVE_STEP_DELAY)", seconds, step)
            time.sleep(float(seconds))


def audit_move(move: Move, action: str, actor: Actor = MOVE_ACTOR, **metadata: object) -> None:
    audit_write(
        actor=actor,
        action=action,
        tenant=move.tenant,
        resource_type="tier_move",
        resource_id=move.id,
        metadata={"from": move.from_tier, "to": move.to_tier, **metadata},
    )

"""Celery shells for tier moves. acks_late + reject_on_worker_lost: a worker that dies mid-move leaves the message to
be delivered again, and the run resumes from the recorded step; the sweep catches moves whose message was lost."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from core.errors import Conflict
from moves import services


@shared_task(name="moves.move_tenant", acks_late=True, reject_on_worker_lost=True)
def move_tenant(move_id: str) -> str:
    try:
        return services.move_run(move_id=move_id).status
    except Conflict as exc:  # another worker runs this move right now: let it finish
        return f"skipped: {exc}"


@shared_task(name="moves.resume_stalled_moves", acks_late=True)
def resume_stalled_moves() -> int:
    """Beat: unfinished moves untouched for MOVE_STALLED_AFTER_SECONDS are enqueued again."""
    older_than = timedelta(seconds=settings.MOVE_STALLED_AFTER_SECONDS)
    return len(services.resume_stalled_moves(older_than=older_than))

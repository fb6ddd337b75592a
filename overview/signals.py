"""Archival job and tier move changes nudge the overview (after the transaction that made them commits)."""

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from archival.models import ArchivalJob
from moves.models import Move
from overview.live import nudge


@receiver(post_save, sender=ArchivalJob, dispatch_uid="overview-archival-job")
def archival_job_saved(**_: Any) -> None:
    transaction.on_commit(nudge)


@receiver(post_save, sender=Move, dispatch_uid="overview-tier-move")
def tier_move_saved(**_: Any) -> None:
    transaction.on_commit(nudge)

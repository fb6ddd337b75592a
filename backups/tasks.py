"""Celery shells for beat: the daily backup (locally) and the weekly restore drill."""

import logging

from celery import shared_task

from backups import drills, services
from core.audit import Actor

log = logging.getLogger(__name__)
BEAT = Actor.system("task:backups")


@shared_task(name="backups.backup_platform_db", acks_late=True)
def backup_platform_db() -> str:
    # Not retried automatically: a failed backup is recorded and alerted on; the next run is a fresh backup.
    return services.backup_create(actor=BEAT).name


@shared_task(name="backups.restore_drill", acks_late=True)
def restore_drill() -> str:
    url = drills.drill_database_url()
    if not url:
        log.warning("restore drill skipped: neither BACKUP_DRILL_DATABASE_URL nor BACKUP_DRILL_DATABASE is set")
        return "skipped"
    drill = drills.restore_drill_run(into_url=url, actor=BEAT, scratch=True)
    return f"{drill.backup_name}: {drill.status}"

"""Celery beat entries for platform backups; the settings merge them into CELERY_BEAT_SCHEDULE."""

from typing import Any

from celery.schedules import crontab


def backup_beat_schedule(*, enabled: bool) -> dict[str, Any]:
    """The daily backup (unless a CronJob takes it, as in Kubernetes) and the weekly restore drill.

    The drill task does nothing but log when BACKUP_DRILL_DATABASE_URL is unset; in Kubernetes it runs from beat, since
    a drill only reads backups and writes a scratch database.
    """
    schedule: dict[str, Any] = {
        "backups-restore-drill": {
            "task": "backups.restore_drill",
            "schedule": crontab(minute=41, hour=4, day_of_week="sun"),
            "options": {"expires": 6 * 3600},
        },
    }
    if enabled:
        schedule["backups-backup-platform-db"] = {
            "task": "backups.backup_platform_db",
            "schedule": crontab(minute=23, hour=2),
            "options": {"expires": 6 * 3600},
        }
    return schedule

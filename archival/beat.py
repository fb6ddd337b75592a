"""Celery beat entries for archival; the settings merge them into CELERY_BEAT_SCHEDULE."""

from datetime import timedelta
from typing import Any

from celery.schedules import crontab


def archival_beat_schedule(*, drill_every_days: int) -> dict[str, Any]:
    """The hourly sweeps, and the archive drill every ``drill_every_days`` (ARCHIVE_DRILL_EVERY_DAYS, 7 by default;
    the metric ``percolate_archive_drill_period_seconds`` tells the alert what "two periods" is)."""
    return {
        "archival-archive-cold-tenants": {
            "task": "archival.archive_cold_tenants",
            "schedule": crontab(minute=17),  # hourly, a bounded batch each time
            "kwargs": {"limit": 100},
            "options": {"expires": 3000},
        },
        "archival-sweep-scratch": {
            "task": "archival.sweep_scratch",
            "schedule": crontab(minute=27),  # hourly
            "options": {"expires": 3000},
        },
        "archival-requeue-stalled-jobs": {
            "task": "archival.requeue_stalled_jobs",
            "schedule": crontab(minute=47),  # hourly
            "options": {"expires": 3000},
        },
        "archival-prune-archives": {
            "task": "archival.prune_archives",
            "schedule": crontab(minute=7, hour=3),  # daily
            "options": {"expires": 6 * 3600},
        },
        "archival-verify-archives": {
            "task": "archival.verify_archives",
            "schedule": timedelta(days=drill_every_days),
            "options": {"expires": 6 * 3600},
        },
    }

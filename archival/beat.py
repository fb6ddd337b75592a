"""Celery beat entries for archival; the settings import this into CELERY_BEAT_SCHEDULE."""

from celery.schedules import crontab

CELERY_BEAT_SCHEDULE = {
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
}

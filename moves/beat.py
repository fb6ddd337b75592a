"""Celery beat entries for tier moves; the settings import this into CELERY_BEAT_SCHEDULE."""

from celery.schedules import crontab

CELERY_BEAT_SCHEDULE = {
    "moves-resume-stalled": {
        "task": "moves.resume_stalled_moves",
        "schedule": crontab(minute="*/5"),  # a move takes seconds: one stalled for minutes lost its worker
        "options": {"expires": 240},
    },
}

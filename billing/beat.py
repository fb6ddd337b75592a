"""Celery beat entries for billing; the settings merge them into CELERY_BEAT_SCHEDULE."""

CELERY_BEAT_SCHEDULE = {
    "billing-retry-events": {
        "task": "billing.retry_events",
        "schedule": 60.0,  # failed and stuck events whose backoff has passed
        "options": {"expires": 50},
    },
    "billing-apply-dunning": {
        "task": "billing.apply_dunning",
        "schedule": 300.0,
        "options": {"expires": 250},
    },
}

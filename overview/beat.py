"""Celery beat entries of the overview app; the settings merge them into CELERY_BEAT_SCHEDULE."""

from typing import Any


def overview_beat_schedule(*, scrape_seconds: float) -> dict[str, Any]:
    return {
        "overview-scrape-tenant-metrics": {
            "task": "overview.scrape_tenant_metrics",
            "schedule": scrape_seconds,
            "options": {"expires": scrape_seconds},  # a late scrape is worthless: the next one comes soon
        },
    }

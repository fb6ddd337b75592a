"""The Celery app; configuration comes from Django settings (CELERY_*)."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "percolate_platform.settings")

app = Celery("percolate_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def serve_worker_metrics(**_: Any) -> None:
    """The worker's /metrics for Prometheus, when CELERY_METRICS_PORT is set (Kubernetes sets 9808)."""
    port = os.environ.get("CELERY_METRICS_PORT")
    if port:
        from percolate_platform.worker_metrics import serve

        serve(int(port))

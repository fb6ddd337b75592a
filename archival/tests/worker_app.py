"""The project's Celery app for the kill-the-worker test: a short Redis visibility timeout so a message whose worker
was SIGKILLed is handed to the next worker within seconds instead of an hour."""

from percolate_platform.celery import app

app.conf.broker_transport_options = {
    "visibility_timeout": 2,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}

__all__ = ["app"]

from django.apps import AppConfig


class ArchivalConfig(AppConfig):
    name = "archival"

    def ready(self) -> None:
        # Register this app's Celery tasks in every process that sets Django up: services enqueue them by name
        # (core.enqueue), so nothing else imports the tasks module.
        from archival import tasks  # noqa: F401

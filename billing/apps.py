from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # Register this app's Celery tasks in every process that sets Django up: services enqueue them by name
        # (core.enqueue), so nothing else imports the tasks module.
        from billing import tasks  # noqa: F401

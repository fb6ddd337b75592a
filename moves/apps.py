from django.apps import AppConfig


class MovesConfig(AppConfig):
    name = "moves"
    verbose_name = "Tier moves"

    def ready(self) -> None:
        # Register this app's Celery tasks in every process that sets Django up: services enqueue them by name
        # (core.enqueue), so nothing else imports the tasks module.
        from moves import tasks  # noqa: F401

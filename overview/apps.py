from django.apps import AppConfig


class OverviewConfig(AppConfig):
    name = "overview"
    verbose_name = "Platform overview"

    def ready(self) -> None:
        from django.contrib import admin

        from overview import signals  # noqa: F401  (connects the nudges)

        admin.site.index_template = "overview/admin_index.html"

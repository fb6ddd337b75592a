from django.apps import AppConfig


class MovesConfig(AppConfig):
    name = "moves"
    verbose_name = "Tier moves"

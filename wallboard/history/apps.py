from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "wallboard.history"
    label = "history"
    verbose_name = "Call history"

from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "wallboard.live"
    label = "live"

from django.apps import AppConfig


class ControlConfig(AppConfig):
    name = "wallboard.control"
    label = "control"

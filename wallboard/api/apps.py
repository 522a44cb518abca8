from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "wallboard.api"
    label = "api"

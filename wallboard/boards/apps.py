from django.apps import AppConfig


class BoardsConfig(AppConfig):
    name = "wallboard.boards"
    label = "boards"

    def ready(self) -> None:
        # Imported here: models and the other apps are ready only now.
        from wallboard.boards import signals

        signals.connect()

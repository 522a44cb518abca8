from django.apps import AppConfig


class BoardsConfig(AppConfig):
    name = "wallboard.boards"
    label = "boards"

    def ready(self) -> None:
        # Imported here: models and the other apps are ready only now.
        from wallboard.boards import selectors, signals
        from wallboard.live import selectors as live_selectors

        signals.connect()
        # The boards own the queues' service-level targets; the live snapshots read them
        # through this reader instead of importing this app.
        live_selectors.sl_targets_reader_set(selectors.sl_targets_read)

"""The Celery application. Beat schedules live in wallboard.schedule, declared in one place."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallboard.settings")

app = Celery("wallboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **_kwargs) -> None:
    # Imported late: the schedule reads Django settings, which are ready only after setup.
    from wallboard.schedule import beat_schedule

    sender.conf.beat_schedule = beat_schedule()

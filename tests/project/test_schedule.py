"""The beat schedule keeps polling when the clock is stepped back."""

from __future__ import annotations

from datetime import timedelta

from wallboard.celery import app
from wallboard.schedule import SteadySchedule, beat_schedule


def test_a_last_run_in_the_future_is_due_at_once():
    """The clock went back a minute: Celery's own schedule would wait out that minute."""
    tick = SteadySchedule(1, app=app)
    now = tick.now()
    assert tick.is_due(now + timedelta(seconds=60)).is_due
    assert tick.is_due(now - timedelta(seconds=2)).is_due
    assert not tick.is_due(now).is_due


def test_the_periodic_entries_use_it():
    entries = beat_schedule()
    assert isinstance(entries["live-poll"]["schedule"], SteadySchedule)
    assert isinstance(entries["history-cdr-poll"]["schedule"], SteadySchedule)

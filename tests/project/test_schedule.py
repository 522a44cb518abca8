"""Beat keeps polling when the clock is stepped back: its entries and its scheduler."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import time_machine

from wallboard.celery import app
from wallboard.schedule import SteadySchedule, SteadyScheduler, beat_schedule


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


class RecordingScheduler(SteadyScheduler):
    """The product's scheduler, noting what it would send instead of sending it."""

    producer = None

    def __init__(self, *args, **kwargs) -> None:
        self.sent: list[str] = []
        super().__init__(*args, **kwargs)

    def apply_entry(self, entry, producer=None) -> None:
        self.sent.append(entry.name)


def polls_sent(scheduler: RecordingScheduler, traveller, seconds: int) -> int:
    """Run beat's loop for ``seconds`` of (fake) time; how many poll ticks it sent."""
    before = scheduler.sent.count("live-poll")
    end = time.time() + seconds
    while time.time() < end:
        wait = scheduler.tick()
        traveller.shift(max(wait, 0.05))
    return scheduler.sent.count("live-poll") - before


def test_beat_keeps_ticking_when_the_clock_is_stepped_back(tmp_path, settings):
    """Celery's scheduler sleeps until its next event's wall-clock time: after a step back of
    30 s it would send no poll for 30 s."""
    settings.POLL_TICK_SECONDS = 1.0
    app.conf.beat_schedule = beat_schedule()
    with time_machine.travel(datetime(2026, 11, 30, 9, 0, tzinfo=UTC), tick=False) as traveller:
        scheduler = RecordingScheduler(app=app, schedule_filename=str(tmp_path / "beat"))
        try:
            assert polls_sent(scheduler, traveller, 10) >= 9
            traveller.shift(-30)
            assert polls_sent(scheduler, traveller, 5) >= 4
        finally:
            scheduler.close()


def test_scheduler_is_the_steady_one():
    assert app.conf.beat_scheduler == "wallboard.schedule:SteadyScheduler"

"""Every Celery beat entry of the product, each with the reason it exists.

Exactly one beat may run per installation (two would double the tick rate; the locks keep that
safe but wasteful): `make run` embeds it in its single worker (`worker -B`), production runs
one `celery -A wallboard beat` service (docs/architecture.md).
"""

from __future__ import annotations

from celery.beat import PersistentScheduler
from celery.schedules import crontab, schedstate, schedule
from django.conf import settings

from wallboard.history.tasks import CDR_POLL_TASK, CDR_PURGE_TASK
from wallboard.live.tasks import POLL_TASK

# The retention purge runs when call centres are quiet (CELERY_TIMEZONE, the installation's).
PURGE_HOUR, PURGE_MINUTE = 3, 17
# How far past its period a fixed-period entry's next event may lie before beat takes it as a
# clock stepped back (the event's time has a little jitter: a tick's own run time).
STEP_BACK_SLACK_SECONDS = 1.0


class SteadySchedule(schedule):
    """A fixed period that a clock stepped back cannot stall: a last run noted in the future
    (before the step) is simply due, where Celery's own schedule would wait until the clock
    caught up with it — seconds or hours without polling."""

    def is_due(self, last_run_at):
        if self.maybe_make_aware(last_run_at) > self.maybe_make_aware(self.now()):
            return schedstate(is_due=True, next=self.seconds)
        return super().is_due(last_run_at)


class SteadyScheduler(PersistentScheduler):
    """Celery beat's scheduler (``CELERY_BEAT_SCHEDULER``), made to survive a clock stepped back.

    Beat keeps each entry's next event as a wall-clock time and sleeps until the first one
    without asking the entry: after a step back of N seconds that event lies N seconds ahead,
    and beat sends nothing for N seconds, whatever the entry's schedule says. An event further
    ahead than its entry's period can only come from such a step, so the events are worked out
    again from the entries, which ``SteadySchedule`` then finds due.
    """

    def tick(self, *args, **kwargs) -> float:
        if self._heap and self._clock_went_back():
            self.populate_heap()
        return super().tick(*args, **kwargs)

    def _clock_went_back(self) -> bool:
        for when, _priority, entry in self._heap:
            if not isinstance(entry.schedule, schedule):
                continue  # a crontab's next run may rightly be hours ahead
            ahead = when - self._when(entry, 0)
            if ahead > entry.schedule.seconds + STEP_BACK_SLACK_SECONDS:
                return True
        return False


def beat_schedule() -> dict[str, dict]:
    tick = settings.POLL_TICK_SECONDS
    cdr_period = settings.CDR_POLL_SECONDS
    return {
        # The poller. Every tick spends the polling share of the PBX budget on what is most out
        # of date (wallboard.live.poller); ticking often keeps the budget busy so a queue's
        # refresh period stays near (Q+1)/B. `expires` ≈ the tick: a tick that waited in the
        # broker longer (worker busy, or down during an outage) is dropped instead of a pile of
        # stale ticks running back to back afterwards.
        "live-poll": {
            "task": POLL_TASK,
            "schedule": SteadySchedule(tick),
            "options": {"expires": tick},
        },
        # The call history: today's new call records (one background request, two while
        # yesterday settles), then today's figures for the boards from the KPI engine. A run
        # that waited longer than a period is dropped (the next one reads everything new
        # anyway), and a lock in the task keeps two runs from overlapping.
        "history-cdr-poll": {
            "task": CDR_POLL_TASK,
            "schedule": SteadySchedule(cdr_period),
            "options": {"expires": cdr_period},
        },
        # Call records past CDR_RETENTION_DAYS, once a day rather than in every CDR poll: a
        # large delete (retention just switched on) must not hold up the boards' figures.
        "history-cdr-purge": {
            "task": CDR_PURGE_TASK,
            "schedule": crontab(hour=PURGE_HOUR, minute=PURGE_MINUTE),
            "options": {"expires": 3600},
        },
    }

"""The Celery tasks are thin interfaces: registered under the names the beat schedule uses, the
poll turns a PBX failure into one log line (the cursors keep what was read), the purge keeps
the retention once a day."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
import time_machine
from celery.schedules import crontab

from wallboard.celery import app
from wallboard.history import services
from wallboard.history.models import CallRecord
from wallboard.history.tasks import CDR_POLL_TASK, CDR_PURGE_TASK, cdr_poll, cdr_purge
from wallboard.live.pbx import pbx_budget
from wallboard.schedule import beat_schedule

from .conftest import ZONE, cdr_row, local

pytestmark = pytest.mark.django_db


def test_the_tasks_are_registered_under_their_beat_names():
    assert CDR_POLL_TASK == "wallboard.history.cdr_poll"
    assert app.tasks[CDR_POLL_TASK].run is cdr_poll.run
    assert app.tasks[CDR_PURGE_TASK].run is cdr_purge.run


def test_beat_polls_every_period_dropping_late_runs_and_purges_once_a_day(settings):
    settings.CDR_POLL_SECONDS = 45
    schedule = beat_schedule()
    poll = schedule["history-cdr-poll"]
    assert (poll["task"], poll["options"]) == (CDR_POLL_TASK, {"expires": 45})
    assert poll["schedule"].run_every.total_seconds() == 45
    purge = schedule["history-cdr-purge"]
    assert purge["task"] == CDR_PURGE_TASK
    assert purge["schedule"] == crontab(hour=3, minute=17)


def test_the_purge_keeps_the_retention_by_the_pbxs_today(settings):
    settings.CDR_RETENTION_DAYS = 2
    rows = [cdr_row(day, f"2026-11-{day} 10:00:00") for day in (17, 18, 19, 20)]
    services.call_records_upsert(rows=rows, known={100}, zone=ZONE, stored_at=local("2026-11-20"))

    # 00:30 on the 21st in Bratislava is still the 20th in UTC: the PBX's day decides.
    with time_machine.travel(local("2026-11-21 00:30"), tick=False):
        assert cdr_purge() == {"purged": 2}
    assert sorted(CallRecord.objects.values_list("id", flat=True)) == [19, 20]


def test_a_run_stores_todays_rows(cdr_pbx, queues_known):
    queues_known([100])
    today = datetime.now(ZONE)
    cdr_pbx.days[today.date()] = [cdr_row(1, today.strftime("%Y-%m-%d 00:00:01"))]

    result = cdr_poll()

    assert result["deferred"] is False
    assert [day["rows"] for day in result["days"]][-1] == 1
    assert CallRecord.objects.get(id=1).queue == 100
    assert result["published"] == 0  # figures published; no queue has a snapshot yet


def test_a_blocked_pbx_is_one_warning_and_no_exception(cdr_pbx, caplog):
    pbx_budget().report_blocked(3.0)
    caplog.set_level(logging.WARNING, logger="wallboard.history")

    result = cdr_poll()

    assert result["failed"].startswith("PBX access is blocked")
    assert [r.getMessage()[:17] for r in caplog.records] == ["CDR poll stopped:"]
    assert cdr_pbx.requests == []

"""The Celery task is a thin interface: registered under the name the beat schedule uses, it
runs the poll and turns a PBX failure into one log line (the cursors keep what was read)."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from wallboard.celery import app
from wallboard.history.models import CallRecord
from wallboard.history.tasks import CDR_POLL_TASK, cdr_poll
from wallboard.live.pbx import pbx_budget

from .conftest import ZONE, cdr_row

pytestmark = pytest.mark.django_db


def test_the_task_is_registered_under_its_beat_name():
    assert CDR_POLL_TASK == "wallboard.history.cdr_poll"
    assert app.tasks[CDR_POLL_TASK].run is cdr_poll.run


def test_a_run_stores_todays_rows(cdr_pbx, queues_known):
    queues_known([100])
    today = datetime.now(ZONE)
    cdr_pbx.days[today.date()] = [cdr_row(1, today.strftime("%Y-%m-%d 00:00:01"))]

    result = cdr_poll()

    assert result["deferred"] is False
    assert [day["rows"] for day in result["days"]][-1] == 1
    assert CallRecord.objects.get(id=1).queue == 100


def test_a_blocked_pbx_is_one_warning_and_no_exception(cdr_pbx, caplog):
    pbx_budget().report_blocked(3.0)
    caplog.set_level(logging.WARNING, logger="wallboard.history")

    result = cdr_poll()

    assert result["failed"].startswith("PBX access is blocked")
    assert [r.getMessage()[:17] for r in caplog.records] == ["CDR poll stopped:"]
    assert cdr_pbx.requests == []

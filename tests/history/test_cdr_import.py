"""`manage.py cdr_import`: a range oldest day first through the shared budget, settled days
skipped unless `--again`, Ctrl-C a clean stop and the next run resuming to the row, bad ranges
refused in words. The PBX is the stand-in at the HTTP seam."""

from __future__ import annotations

import io
import time
from datetime import date, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from pbxapi.errors import BudgetExhausted
from wallboard.history import services
from wallboard.history.management.commands import cdr_import
from wallboard.history.models import CallRecord, CdrDayCursor
from wallboard.live.pbx import pbx_budget

from .conftest import ZONE, cdr_row

pytestmark = pytest.mark.django_db

FIRST, MIDDLE, LAST = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


def window_filled_by_actions() -> None:
    """Agent actions take every slot of the budget's (1 s) window."""
    budget = pbx_budget()
    while True:
        try:
            budget.acquire(priority="action")
        except BudgetExhausted:
            return


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(*args: str, stderr=None) -> tuple[str, str]:
    out, err = io.StringIO(), stderr or io.StringIO()
    call_command("cdr_import", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def three_days(cdr_pbx, queues_known):
    queues_known([100])
    cdr_pbx.days[FIRST] = [cdr_row(1, "2026-11-01 09:00:00"), cdr_row(2, "2026-11-01 09:05:00")]
    cdr_pbx.days[LAST] = [cdr_row(n, "2026-11-03 10:00:00") for n in range(3, 3006)]
    return cdr_pbx


def test_it_imports_a_range_oldest_day_first_and_settles_it(three_days):
    out, err = run("--from", "2026-11-01", "--to", "2026-11-03")

    assert [query["date_from"] for query in three_days.requests] == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
        "2026-11-03",  # 3003 rows: a second page
    ]
    assert CallRecord.objects.count() == 3005
    assert CallRecord.objects.filter(day=LAST, queue=100).count() == 3003
    assert all(cursor.settled_at for cursor in CdrDayCursor.objects.all())
    assert "Read 3 days (0 already settled): 3,005 rows, 4 requests" in out
    lines = err.strip().splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "days 1/3 (2026-11-01)",
        "days 2/3 (2026-11-02)",
        "days 3/3 (2026-11-03)",
    ]
    assert "rows 3,005  requests 4" in lines[-1]


def test_it_holds_one_budget_slot_at_a_time(three_days, settings):
    """Each request comes a whole window after the previous one ended, when that request's slot
    has left the budget: the import never takes more than the slot the polls leave idle."""
    run("--from", "2026-11-01", "--to", "2026-11-03")

    assert len(three_days.arrived) == 4
    gaps = [
        arrived - answered
        for answered, arrived in zip(three_days.answered, three_days.arrived[1:], strict=False)
    ]
    assert min(gaps) >= settings.PBX_BUDGET_WINDOW


def test_settled_days_are_skipped_and_read_again_when_asked(three_days):
    run("--from", "2026-11-01", "--to", "2026-11-03")
    asked = len(three_days.requests)

    out, _ = run("--from", "2026-11-01", "--to", "2026-11-03")

    assert len(three_days.requests) == asked
    assert "Read 3 days (3 already settled): 0 rows, 0 requests" in out

    three_days.days[FIRST][0]["recording_file"] = "q-100-x-20261101-090000-1.mp3"
    out, _ = run("--from", "2026-11-01", "--to", "2026-11-01", "--again")

    assert [query["offset"] for query in three_days.requests[asked:]] == ["0"]
    assert CallRecord.objects.get(id=1).recording_file == "q-100-x-20261101-090000-1.mp3"
    assert CdrDayCursor.objects.get(day=FIRST).settled_at is not None


def test_it_waits_for_the_budget_instead_of_failing(three_days, monkeypatch):
    monkeypatch.setattr(cdr_import, "REQUEST_MAX_WAIT_SECONDS", 0.05)
    run("--from", "2026-11-01", "--to", "2026-11-01")
    three_days.days[FIRST].append(cdr_row(9, "2026-11-01 23:00:00"))
    window_filled_by_actions()

    out, _ = run("--from", "2026-11-01", "--to", "2026-11-01", "--again")

    assert CallRecord.objects.filter(day=FIRST).count() == 3
    assert CdrDayCursor.objects.get(day=FIRST).settled_at is not None
    assert "Read 1 days" in out


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes_to_the_row(three_days, monkeypatch):
    """Ctrl-C is a KeyboardInterrupt in the command (Python's own SIGINT handler raises it),
    raised here where an operator's Ctrl-C mostly lands: in the pause between two requests
    (before the fourth, the second page of the last day, whose first page is stored). Raised
    directly: a real signal is handled by whichever handler the test process holds at the time,
    which an earlier test's library may have replaced."""
    pauses = 0

    def interrupted_pause(seconds: float) -> None:
        nonlocal pauses
        pauses += 1
        if pauses == 3:
            raise KeyboardInterrupt
        time.sleep(seconds)

    monkeypatch.setattr(
        cdr_import, "backfill_pace", lambda: services.backfill_pace(sleep=interrupted_pause)
    )

    out, _ = run("--from", "2026-11-01", "--to", "2026-11-03")

    assert out.startswith("Interrupted after 2 of 3 days (3,002 rows, 3 requests)")
    assert "run the same command again to resume" in out
    assert CdrDayCursor.objects.get(day=LAST).rows == 3000
    asked = len(three_days.requests)

    out, _ = run("--from", "2026-11-01", "--to", "2026-11-03")

    assert [(q["date_from"], q["offset"]) for q in three_days.requests[asked:]] == [
        ("2026-11-03", "2999")
    ]
    assert "(2 already settled)" in out
    assert CallRecord.objects.count() == 3005


def test_on_a_terminal_the_progress_is_one_line_rewritten(three_days):
    terminal = Terminal()

    run("--from", "2026-11-01", "--to", "2026-11-02", stderr=terminal)

    shown = terminal.getvalue()
    assert shown.count("\r\x1b[2K") >= 2
    assert shown.count("\n") == 1  # the line is ended once, at the end
    assert "days 2/2" in shown.rsplit("\r", 1)[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-31", "--to", "2026-12-01"], "--from '2026-11-31' is not a date"),
        (["--from", "2026-11-02", "--to", "2026-11-01"], "--to 2026-11-01 is before --from"),
        (["--from", "2026-11-01", "--to", "tomorrow"], "--to 'tomorrow' is not a date"),
    ],
)
def test_bad_ranges_are_refused(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_a_range_in_the_future_is_refused():
    today = timezone.now().astimezone(ZONE).date()

    with pytest.raises(CommandError, match="is in the future"):
        run("--from", str(today), "--to", str(today + timedelta(days=1)))


def test_a_range_the_retention_would_delete_is_refused(settings):
    settings.CDR_RETENTION_DAYS = 30
    today = timezone.now().astimezone(ZONE).date()

    with pytest.raises(CommandError, match="older than the retention keeps"):
        run("--from", str(today - timedelta(days=31)), "--to", str(today))

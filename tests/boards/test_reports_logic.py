"""The reports page's pure logic: range presets and the periods they are compared with, default
intervals, a period's calls, the headline's changes, and CSV cells that stay data."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest

from tests.history_seed import ZONE
from wallboard.boards import reports
from wallboard.history.intervals import MAX_SPAN_DAYS, periods
from wallboard.history.kpi import CallFact, KpiRules, selection_report

WEDNESDAY = date(2026, 11, 25)


@pytest.mark.parametrize(
    ("preset", "today", "expected", "previous"),
    [
        ("today", "2026-11-25", ("2026-11-25", "2026-11-25"), ("2026-11-24", "2026-11-24")),
        ("yesterday", "2026-11-25", ("2026-11-24", "2026-11-24"), ("2026-11-23", "2026-11-23")),
        # This week so far against the same days of last week.
        ("this_week", "2026-11-25", ("2026-11-23", "2026-11-25"), ("2026-11-16", "2026-11-18")),
        ("last_week", "2026-11-25", ("2026-11-16", "2026-11-22"), ("2026-11-09", "2026-11-15")),
        ("this_month", "2026-11-25", ("2026-11-01", "2026-11-25"), ("2026-10-01", "2026-10-25")),
        ("last_month", "2026-11-25", ("2026-10-01", "2026-10-31"), ("2026-09-01", "2026-09-30")),
        # A Monday's week is that one day; the 31st's month is cut to a shorter one.
        ("this_week", "2026-11-30", ("2026-11-30", "2026-11-30"), ("2026-11-23", "2026-11-23")),
        ("this_month", "2026-03-31", ("2026-03-01", "2026-03-31"), ("2026-02-01", "2026-02-28")),
        ("last_month", "2026-03-15", ("2026-02-01", "2026-02-28"), ("2026-01-01", "2026-01-28")),
        ("this_month", "2026-01-10", ("2026-01-01", "2026-01-10"), ("2025-12-01", "2025-12-10")),
    ],
)  # fmt: skip
def test_it_turns_presets_into_days_and_their_previous_period(preset, today, expected, previous):
    first, last = reports.range_days(preset, today=date.fromisoformat(today))

    assert (first.isoformat(), last.isoformat()) == expected
    before = reports.previous_range(preset, first, last)
    assert (before[0].isoformat(), before[1].isoformat()) == previous


def test_a_custom_range_is_compared_with_as_many_days_just_before():
    assert reports.previous_range("custom", date(2026, 11, 10), date(2026, 11, 19)) == (
        date(2026, 10, 31),
        date(2026, 11, 9),
    )


def test_it_refuses_an_unknown_preset():
    with pytest.raises(ValueError, match="Unknown range"):
        reports.range_days("fortnight", today=WEDNESDAY)


@pytest.mark.parametrize(
    ("days", "interval"),
    [(1, "hour"), (2, "hour"), (3, "day"), (31, "day"), (92, "day"), (93, "week"), (731, "week"),
     (732, "month")],
)  # fmt: skip
def test_the_default_interval_fits_the_range(days, interval):
    first = date(2024, 1, 1)
    last = date.fromordinal(first.toordinal() + days - 1)

    assert reports.default_interval(first, last) == interval
    assert reports.span_fits(first, last, interval)
    assert days <= MAX_SPAN_DAYS[interval]


def test_the_previous_period_of_a_running_range_stops_at_the_same_time_of_day():
    now = datetime(2026, 11, 25, 14, 30, 12, tzinfo=ZONE)

    cut = reports.previous_cut(
        now, date_from=WEDNESDAY, date_to=WEDNESDAY, previous_to=date(2026, 11, 24), zone=ZONE
    )
    assert cut == datetime(2026, 11, 24, 14, 30, 12, tzinfo=ZONE)
    # Across the autumn change it is the same wall-clock time, not the same elapsed time.
    monday = datetime(2026, 10, 26, 9, 0, tzinfo=ZONE)
    cut = reports.previous_cut(
        monday,
        date_from=date(2026, 10, 26),
        date_to=date(2026, 10, 26),
        previous_to=date(2026, 10, 25),
        zone=ZONE,
    )
    assert cut.isoformat() == "2026-10-25T09:00:00+01:00"
    # A range that is over is compared whole.
    assert (
        reports.previous_cut(
            now,
            date_from=date(2026, 11, 16),
            date_to=date(2026, 11, 22),
            previous_to=date(2026, 11, 15),
            zone=ZONE,
        )
        is None
    )


@pytest.mark.parametrize("interval", ["15min", "hour", "day", "week", "month"])
def test_a_periods_calls_are_the_days_and_quarter_hours_it_groups(interval):
    first, last = date(2026, 10, 21), date(2026, 11, 3)  # Wednesday to a Tuesday, across months
    report_periods = periods(first, last, interval, ZONE)

    found = [
        reports.period_calls(p.key, interval=interval, date_from=first, date_to=last)
        for p in report_periods
    ]

    for period, calls in zip(report_periods, found, strict=True):
        assert calls.date_from == period.start.date()
        if calls.slots is None:
            # Whole days: the period ends at the midnight after its last day.
            assert period.end.date() == date.fromordinal(calls.date_to.toordinal() + 1)
        else:
            assert calls.date_from == calls.date_to
            quarters = round(period.hours * 4)
            assert calls.slots[1] - calls.slots[0] == quarters
    # Weeks and months are cut to the range: the first week starts on the Wednesday.
    if interval == "week":
        assert (found[0].date_from, found[0].date_to) == (first, date(2026, 10, 25))
        assert (found[-1].date_from, found[-1].date_to) == (date(2026, 11, 2), last)
    if interval == "month":
        assert [(c.date_from.day, c.date_to.day) for c in found] == [(21, 31), (1, 3)]


def day_figures(*, within: int = 0, late: int = 0, abandoned: int = 0):
    """A day of queue 100 through the engine: answered calls after 10 s (within the 20 s
    target) and after 60 s (late), 100 s of talk each, and abandons after 30 s."""
    calls = (
        [CallFact(100, WEDNESDAY, 40, "answered", 10, 100, "201")] * within
        + [CallFact(100, WEDNESDAY, 40, "answered", 60, 100, "201")] * late
        + [CallFact(100, WEDNESDAY, 41, "abandoned", 30, None, "")] * abandoned
    )
    report = selection_report(
        [calls],
        rules={100: KpiRules()},
        date_from=WEDNESDAY,
        date_to=WEDNESDAY,
        interval="day",
        zone=ZONE,
    )
    return report.selection_total


def test_the_headline_says_which_way_each_figure_moved():
    now = day_figures(within=90, abandoned=10)
    before = day_figures(within=40, late=40, abandoned=20)

    changes = {change.key: change for change in reports.headline(now, before)}

    assert (changes["offered"].value, changes["offered"].previous) == (100, 100)
    assert (changes["offered"].change, changes["offered"].trend) == (0.0, None)
    assert (changes["abandoned"].change, changes["abandoned"].trend) == (-50.0, "better")
    assert changes["service_level"].kind == "percent"
    assert (changes["service_level"].change, changes["service_level"].trend) == (50.0, "better")
    assert (changes["asa"].value, changes["asa"].change, changes["asa"].trend) == (
        10.0,
        -25.0,
        "better",
    )
    assert (changes["aht"].change, changes["aht"].trend) == (0.0, None)  # neither way is better
    worse = {change.key: change for change in reports.headline(before, now)}
    assert (worse["abandon_rate"].change, worse["abandon_rate"].trend) == (10.0, "worse")
    assert worse["service_level"].trend == "worse"


def test_a_figure_with_nothing_before_has_no_change():
    changes = {c.key: c for c in reports.headline(day_figures(within=5), day_figures())}

    assert (changes["answered"].previous, changes["answered"].change) == (0, None)
    assert (changes["asa"].previous, changes["asa"].change, changes["asa"].trend) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (True, "true"),
        (12.5, "12.5"),
        ("+421903123456", "+421903123456"),  # a phone number stays a number
        ("-5", "-5"),
        ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("Jana Nováková", "Jana Nováková"),
    ],
)  # fmt: skip
def test_csv_cells_stay_data(value, cell):
    assert reports.cell(value) == cell


def test_csv_text_quotes_what_needs_quoting():
    text = reports.csv_text([["a,b", 'say "hi"', None], [1, 2.5, False]])

    assert list(csv.reader(io.StringIO(text))) == [["a,b", 'say "hi"', ""], ["1", "2.5", "false"]]
    assert text.endswith("\r\n")

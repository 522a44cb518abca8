"""The PBX's local calendar: days that last 23 or 25 hours, quarter hours of the repeated hour
kept apart, weeks from Monday, ranges refused in plain words."""

from __future__ import annotations

from datetime import date

import pytest

from wallboard.history.intervals import (
    RangeInvalid,
    day_seconds,
    periods,
    range_check,
)

from .conftest import ZONE, local

SPRING = date(2026, 3, 29)  # last Sunday of March: 02:00 → 03:00
AUTUMN = date(2026, 10, 25)  # last Sunday of October: 03:00 → 02:00


def test_the_days_the_clocks_change_last_23_and_25_hours():
    assert day_seconds(SPRING, ZONE) == 23 * 3600
    assert day_seconds(AUTUMN, ZONE) == 25 * 3600
    assert day_seconds(date(2026, 11, 20), ZONE) == 24 * 3600


def test_quarter_hours_of_the_repeated_hour_are_periods_of_their_own():
    quarters = periods(AUTUMN, AUTUMN, "15min", ZONE)

    assert len(quarters) == 100
    assert [p.start.isoformat() for p in quarters[7:13]] == [
        "2026-10-25T01:45:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:15:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:45:00+02:00",
        "2026-10-25T02:00:00+01:00",
    ]
    assert quarters[12].key == (AUTUMN, 12)
    assert all(p.hours == 0.25 for p in quarters)
    assert quarters[-1].end == local("2026-10-26 00:00")


def test_the_spring_day_has_no_period_for_the_missing_hour():
    hours = periods(SPRING, SPRING, "hour", ZONE)

    assert len(hours) == 23
    assert [p.start.strftime("%H:%M%z") for p in hours[1:4]] == [
        "01:00+0100",
        "03:00+0200",
        "04:00+0200",
    ]
    assert len(periods(SPRING, SPRING, "15min", ZONE)) == 92


def test_a_day_period_says_how_long_the_day_really_was():
    days = periods(date(2026, 10, 24), date(2026, 10, 26), "day", ZONE)

    assert [p.hours for p in days] == [24, 25, 24]
    assert [p.key for p in days] == [date(2026, 10, 24), AUTUMN, date(2026, 10, 26)]


def test_weeks_start_on_monday_and_are_cut_to_the_range():
    weeks = periods(date(2026, 11, 18), date(2026, 12, 2), "week", ZONE)

    assert [(p.start.date(), p.end.date(), p.hours) for p in weeks] == [
        (date(2026, 11, 18), date(2026, 11, 23), 5 * 24),  # Wednesday to Sunday
        (date(2026, 11, 23), date(2026, 11, 30), 7 * 24),
        (date(2026, 11, 30), date(2026, 12, 3), 3 * 24),
    ]
    assert [p.key for p in weeks] == [date(2026, 11, 16), date(2026, 11, 23), date(2026, 11, 30)]
    # The week of the autumn change has an hour more.
    assert periods(date(2026, 10, 19), AUTUMN, "week", ZONE)[0].hours == 7 * 24 + 1


def test_months_are_cut_to_the_range():
    months = periods(date(2026, 10, 20), date(2026, 12, 2), "month", ZONE)

    assert [(p.key, p.start.date(), p.end.date()) for p in months] == [
        (date(2026, 10, 1), date(2026, 10, 20), date(2026, 11, 1)),
        (date(2026, 11, 1), date(2026, 11, 1), date(2026, 12, 1)),
        (date(2026, 12, 1), date(2026, 12, 1), date(2026, 12, 3)),
    ]
    assert months[0].hours == 12 * 24 + 1  # 20-31 October, the change included


@pytest.mark.parametrize(
    ("date_from", "date_to", "interval", "message"),
    [
        (date(2026, 11, 2), date(2026, 11, 1), "day", "ends .* before it starts"),
        (date(2026, 11, 1), date(2026, 12, 2), "15min", "32 days is too long .*at most 31"),
        (date(2026, 1, 1), date(2026, 6, 1), "hour", "too long"),
        (date(2026, 11, 1), date(2026, 11, 2), "fortnight", "Unknown interval"),
    ],
)
def test_it_refuses_ranges_it_cannot_serve(date_from, date_to, interval, message):
    with pytest.raises(RangeInvalid, match=message):
        range_check(date_from, date_to, interval)


def test_a_month_of_quarter_hours_and_five_years_of_months_are_served():
    range_check(date(2026, 11, 1), date(2026, 12, 1), "15min")  # 31 days
    range_check(date(2022, 1, 1), date(2026, 12, 31), "month")

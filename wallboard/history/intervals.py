"""The PBX's local calendar for history: local days, 15-minute slots and report periods.

Pure functions (standard library only). The PBX writes ``when`` in its local time, and its
``date_from``/``date_to`` filters are local dates, so every figure is grouped by the PBX's local
day. A *slot* is a quarter of an hour of elapsed time since the local midnight: on the day the
clocks go back (25 hours) the repeated hour has four slots of its own (02:00+02:00 is slot 8,
02:00+01:00 is slot 12), and on the day they go forward (23 hours) there are 92 slots, none of
them for the hour that does not exist. Hours are four slots, so they follow the same rule.

Times are compared and subtracted as Unix timestamps: Python compares and subtracts two aware
datetimes that share a ``tzinfo`` on their wall-clock values, which is wrong across a DST change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SLOT_SECONDS = 900
SLOTS_PER_HOUR = 4

INTERVAL_15MIN = "15min"
INTERVAL_HOUR = "hour"
INTERVAL_DAY = "day"
INTERVAL_WEEK = "week"
INTERVAL_MONTH = "month"
INTERVALS = (INTERVAL_15MIN, INTERVAL_HOUR, INTERVAL_DAY, INTERVAL_WEEK, INTERVAL_MONTH)

# The longest range (in days, both ends included) a report may cover at each interval: a month of
# quarter hours is 2,976 periods per queue, which a page can still draw and the engine fills in
# well under a second; longer ranges want a coarser interval.
MAX_SPAN_DAYS = {
    INTERVAL_15MIN: 31,
    INTERVAL_HOUR: 92,
    INTERVAL_DAY: 366,
    INTERVAL_WEEK: 731,
    INTERVAL_MONTH: 1827,
}


class QueryInvalid(ValueError):
    """A history question that cannot be answered as asked (a reversed or too long range, an
    unknown interval or outcome...); the message says why in plain words, and the API answers
    it with 400."""


class RangeInvalid(QueryInvalid):
    """A report range or interval that cannot be served."""


@dataclass(frozen=True)
class Period:
    """One row of a report: [start, end) in the PBX's local time, and its real length.

    ``hours`` is elapsed time: 23 or 25 for the days the clocks change (and for the weeks and
    months that hold them), 0.25 for a slot. ``key`` is what calls are grouped by (``period_key``).
    """

    key: object
    start: datetime
    end: datetime
    hours: float


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of the local ``day`` (its midnight), aware in ``zone``."""
    naive_midnight = datetime.combine(day, time(0), zone)
    # Normalised through the timestamp, so a midnight that a DST change skips becomes the
    # instant the day really begins.
    return datetime.fromtimestamp(naive_midnight.timestamp(), zone)


def day_seconds(day: date, zone: ZoneInfo) -> int:
    """How long the local ``day`` lasts: 86,400 s, or an hour less or more on a DST change."""
    following = day_start(day + timedelta(days=1), zone).timestamp()
    return int(following - day_start(day, zone).timestamp())


def day_and_slot(when: datetime, zone: ZoneInfo) -> tuple[date, int]:
    """The local day of the instant ``when`` and its slot (quarter hours since local midnight)."""
    day = when.astimezone(zone).date()
    elapsed = when.timestamp() - day_start(day, zone).timestamp()
    return day, int(elapsed // SLOT_SECONDS)


def local_today(now: datetime, zone: ZoneInfo) -> date:
    """The PBX's local date at the instant ``now``."""
    return now.astimezone(zone).date()


def week_start(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def period_key(interval: str, day: date, slot: int) -> object:
    """What a call of ``day``/``slot`` is grouped by at ``interval`` (``Period.key``)."""
    if interval == INTERVAL_15MIN:
        return (day, slot)
    if interval == INTERVAL_HOUR:
        return (day, slot // SLOTS_PER_HOUR)
    if interval == INTERVAL_DAY:
        return day
    if interval == INTERVAL_WEEK:
        return week_start(day)
    if interval == INTERVAL_MONTH:
        return day.replace(day=1)
    raise RangeInvalid(f"Unknown interval {interval!r}; use one of {', '.join(INTERVALS)}")


def range_check(date_from: date, date_to: date, interval: str) -> None:
    """Refuse a reversed range, an unknown interval or a range too long for its interval."""
    if interval not in INTERVALS:
        raise RangeInvalid(f"Unknown interval {interval!r}; use one of {', '.join(INTERVALS)}")
    if date_to < date_from:
        raise RangeInvalid(f"The range ends ({date_to}) before it starts ({date_from})")
    days = (date_to - date_from).days + 1
    limit = MAX_SPAN_DAYS[interval]
    if days > limit:
        raise RangeInvalid(
            f"{days} days is too long a range for the interval {interval!r} "
            f"(at most {limit} days); choose a coarser interval or a shorter range"
        )


def days_of(date_from: date, date_to: date) -> list[date]:
    """Every day from ``date_from`` to ``date_to``, both included."""
    return [date_from + timedelta(days=n) for n in range((date_to - date_from).days + 1)]


def periods(date_from: date, date_to: date, interval: str, zone: ZoneInfo) -> list[Period]:
    """The report's periods from the start of ``date_from`` to the end of ``date_to``, in order.

    Weeks and months are cut to the range: a range from a Wednesday starts its first week on
    that Wednesday, and the period's ``start`` and ``hours`` say so.
    """
    range_check(date_from, date_to, interval)
    days = days_of(date_from, date_to)
    if interval in (INTERVAL_15MIN, INTERVAL_HOUR):
        step = SLOT_SECONDS * (SLOTS_PER_HOUR if interval == INTERVAL_HOUR else 1)
        result = []
        for day in days:
            start = day_start(day, zone).timestamp()
            for index in range(-(-day_seconds(day, zone) // step)):
                begin = start + index * step
                result.append(_period((day, index), begin, begin + step, zone))
        return result
    groups: dict[object, list[date]] = {}
    for day in days:
        groups.setdefault(period_key(interval, day, 0), []).append(day)
    return [
        _period(
            key,
            day_start(members[0], zone).timestamp(),
            day_start(members[-1] + timedelta(days=1), zone).timestamp(),
            zone,
        )
        for key, members in groups.items()
    ]


def _period(key: object, start: float, end: float, zone: ZoneInfo) -> Period:
    return Period(
        key=key,
        start=datetime.fromtimestamp(start, zone),
        end=datetime.fromtimestamp(end, zone),
        hours=(end - start) / 3600,
    )

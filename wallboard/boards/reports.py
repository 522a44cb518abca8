"""The reports page's logic, pure: the days a range preset means and the period it is compared
with, the default interval, a report period's calls, the headline's changes, what the charts
get, and the CSV exports' columns and rows (docs/reports.md documents every column).

Nothing here reads the database or the clock: the views hand in today, the report and the rows.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from wallboard.history.intervals import (
    INTERVAL_15MIN,
    INTERVAL_DAY,
    INTERVAL_HOUR,
    INTERVAL_MONTH,
    INTERVAL_WEEK,
    MAX_SPAN_DAYS,
    SLOTS_PER_HOUR,
    days_of,
    period_key,
    week_start,
)
from wallboard.history.kpi import AgentFigures, KpiRules, QueueFigures, SelectionReport
from wallboard.history.records import OUTCOME_ABANDONED

RANGE_TODAY = "today"
RANGE_YESTERDAY = "yesterday"
RANGE_THIS_WEEK = "this_week"
RANGE_LAST_WEEK = "last_week"
RANGE_THIS_MONTH = "this_month"
RANGE_LAST_MONTH = "last_month"
RANGE_CUSTOM = "custom"
RANGES = (
    RANGE_TODAY,
    RANGE_YESTERDAY,
    RANGE_THIS_WEEK,
    RANGE_LAST_WEEK,
    RANGE_THIS_MONTH,
    RANGE_LAST_MONTH,
    RANGE_CUSTOM,
)

# The intervals the page offers, finest first (the engine's names).
REPORT_INTERVALS = (INTERVAL_15MIN, INTERVAL_HOUR, INTERVAL_DAY, INTERVAL_WEEK, INTERVAL_MONTH)


# --- ranges -------------------------------------------------------------------------------------


def range_days(preset: str, *, today: date) -> tuple[date, date]:
    """The first and last day of a range preset (not ``RANGE_CUSTOM``); weeks start on Monday,
    "this week" and "this month" end today."""
    if preset == RANGE_TODAY:
        return today, today
    if preset == RANGE_YESTERDAY:
        yesterday = today - timedelta(days=1)
        return yesterday, yesterday
    if preset == RANGE_THIS_WEEK:
        return week_start(today), today
    if preset == RANGE_LAST_WEEK:
        monday = week_start(today) - timedelta(days=7)
        return monday, monday + timedelta(days=6)
    if preset == RANGE_THIS_MONTH:
        return today.replace(day=1), today
    if preset == RANGE_LAST_MONTH:
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    raise ValueError(f"Unknown range preset {preset!r}")


def previous_range(preset: str, date_from: date, date_to: date) -> tuple[date, date]:
    """The period a range is compared with: the same stretch one step earlier.

    A week preset steps back a week and a month preset a month, keeping the days (this week so
    far against the same days of last week; the first 12 days of this month against the first
    12 of last month, cut to its length); any other range is compared with as many days just
    before it (yesterday for today).
    """
    if preset in (RANGE_THIS_WEEK, RANGE_LAST_WEEK):
        return date_from - timedelta(days=7), date_to - timedelta(days=7)
    if preset in (RANGE_THIS_MONTH, RANGE_LAST_MONTH):
        first = (date_from.replace(day=1) - timedelta(days=1)).replace(day=1)
        month_end = date_from.replace(day=1) - timedelta(days=1)
        last = min(first + (date_to - date_from), month_end)
        return first, last
    length = date_to - date_from + timedelta(days=1)
    return date_from - length, date_to - length


def default_interval(date_from: date, date_to: date) -> str:
    """The interval a range is shown at unless one is asked for: hours for a day or two, days
    up to a quarter, then weeks, then months."""
    days = (date_to - date_from).days + 1
    if days <= 2:
        return INTERVAL_HOUR
    if days <= MAX_SPAN_DAYS[INTERVAL_HOUR]:
        return INTERVAL_DAY
    if days <= MAX_SPAN_DAYS[INTERVAL_WEEK]:
        return INTERVAL_WEEK
    return INTERVAL_MONTH


def span_fits(date_from: date, date_to: date, interval: str) -> bool:
    """Whether the range is short enough for the interval (``intervals.MAX_SPAN_DAYS``)."""
    return (date_to - date_from).days + 1 <= MAX_SPAN_DAYS[interval]


@dataclass(frozen=True)
class PeriodCalls:
    """Which calls belong to one report period: these days, and in them these quarter hours
    (``slots`` = (first, end), or None for whole days)."""

    date_from: date
    date_to: date
    slots: tuple[int, int] | None


def period_calls(key: object, *, interval: str, date_from: date, date_to: date) -> PeriodCalls:
    """The calls of the report period ``key`` (``intervals.Period.key``) within the range: the
    same grouping the engine counts by, so the list holds exactly the calls the figures count."""
    if interval == INTERVAL_15MIN:
        day, slot = key  # type: ignore[misc]
        return PeriodCalls(day, day, (slot, slot + 1))
    if interval == INTERVAL_HOUR:
        day, hour = key  # type: ignore[misc]
        return PeriodCalls(day, day, (hour * SLOTS_PER_HOUR, (hour + 1) * SLOTS_PER_HOUR))
    if interval == INTERVAL_DAY:
        return PeriodCalls(key, key, None)  # type: ignore[arg-type]
    days = [day for day in days_of(date_from, date_to) if period_key(interval, day, 0) == key]
    return PeriodCalls(days[0], days[-1], None)


# --- headline -----------------------------------------------------------------------------------

# The headline's figures: (QueueFigures field, kind, which way is better). The kind says how
# the change is shown: counts in percent of the previous value, percentages in points, times
# in seconds. None: neither way is better (more calls offered is not good or bad service).
HEADLINE = (
    ("offered", "count", None),
    ("answered", "count", None),
    ("abandoned", "count", "down"),
    ("short_abandoned", "count", None),
    ("service_level", "percent", "up"),
    ("asa", "seconds", "down"),
    ("aht", "seconds", None),
    ("longest_wait", "seconds", "down"),
    ("abandon_rate", "percent", "down"),
)


@dataclass(frozen=True)
class Change:
    """One headline figure against the previous period."""

    key: str
    kind: str  # "count", "percent", "seconds"
    value: float | None
    previous: float | None
    change: float | None  # count: % of previous; percent: points; seconds: seconds
    trend: str | None  # "better", "worse", "same", or None (no judgement or nothing to compare)


def headline(current: QueueFigures, previous: QueueFigures) -> list[Change]:
    """The headline figures of a range with the previous period's beside them."""
    result = []
    for key, kind, better in HEADLINE:
        value, before = getattr(current, key), getattr(previous, key)
        change: float | None = None
        if value is not None and before is not None:
            if kind == "count":
                change = round(100.0 * (value - before) / before, 1) if before else None
            else:
                change = round(value - before, 1)
        trend = None
        if better is not None and change is not None:
            if change == 0:
                trend = "same"
            else:
                trend = "better" if (change > 0) == (better == "up") else "worse"
        result.append(Change(key, kind, value, before, change, trend))
    return result


# --- charts -------------------------------------------------------------------------------------


def chart_data(report: SelectionReport) -> dict[str, Any]:
    """What the page's charts draw (json_script): the selection per period and by hour of day.

    ``abandoned`` + ``other`` (voicemail, timed out, busy) + ``answered`` = ``offered``, so the
    bars stack to the calls offered."""
    selection = report.selection
    return {
        "interval": report.interval,
        "periods": [[p.start.isoformat(), p.end.isoformat()] for p in report.periods],
        "offered": [f.offered for f in selection],
        "answered": [f.answered for f in selection],
        "abandoned": [f.abandoned for f in selection],
        "other": [f.unanswered - f.abandoned for f in selection],
        "service_level": [f.service_level for f in selection],
        "goal": report.selection_total.target_percent,
        "asa": [f.asa for f in selection],
        "longest_wait": [f.longest_wait for f in selection],
        "hours": {
            "offered": [f.offered for f in report.by_hour],
            "answered": [f.answered for f in report.by_hour],
            "abandoned": [f.abandoned for f in report.by_hour],
            "other": [f.unanswered - f.abandoned for f in report.by_hour],
        },
    }


# --- CSV ----------------------------------------------------------------------------------------

# The exports' columns, in order (docs/reports.md says what each holds). Names are fixed
# English identifiers, whatever the page's language, so scripts that read them keep working.
INTERVAL_COLUMNS = (
    "period_start",
    "period_end",
    "hours",
    "queue",
    "offered",
    "answered",
    "unanswered",
    "abandoned",
    "short_abandoned",
    "voicemail",
    "timed_out",
    "busy",
    "answered_within_target",
    "service_level",
    "service_level_goal",
    "service_level_met",
    "target_seconds",
    "formula",
    "short_abandons_excluded",
    "asa",
    "aht",
    "longest_wait",
    "abandon_rate",
    "talk_seconds",
    "wait_unknown",
)
AGENT_COLUMNS = (
    "agent",
    "name",
    "calls",
    "share",
    "talk_seconds",
    "aht",
    "longest_talk",
    "calls_by_queue",
)
CALL_COLUMNS = (
    "id",
    "start",
    "queue",
    "caller",
    "caller_name",
    "outcome",
    "short_abandon",
    "wait",
    "talk",
    "agent",
    "agent_name",
    "unique_id",
)
SELECTION_ROW = "all"  # the ``queue`` of interval rows that add up the selected queues
CSV_BOM = "\ufeff"  # so that spreadsheet programs read the file as UTF-8 (names have diacritics)

# A text cell a spreadsheet would run as a formula; plain numbers (+421903...) are left alone.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def cell(value: object) -> str:
    """One CSV cell: None -> empty, booleans -> true/false, text that a spreadsheet would take
    for a formula gets a leading apostrophe (the usual defence against CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """CSV lines (RFC 4180, CRLF) for these rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return out.getvalue()


def _figures_row(figures: QueueFigures) -> list[object]:
    return [
        figures.offered,
        figures.answered,
        figures.unanswered,
        figures.abandoned,
        figures.short_abandoned,
        figures.voicemail,
        figures.timed_out,
        figures.busy,
        figures.answered_within_target,
        figures.service_level,
        figures.target_percent,
        figures.service_level_met,
        figures.target_seconds,
        figures.formula,
        figures.short_abandons_excluded,
        figures.asa,
        figures.aht,
        figures.longest_wait,
        figures.abandon_rate,
        figures.talk_seconds,
        figures.wait_unknown,
    ]


def interval_rows(report: SelectionReport) -> Iterator[list[object]]:
    """Each period's row per queue, then (with more than one queue) the selection's row."""
    queues = sorted(report.figures)
    together = len(queues) > 1
    for index, period in enumerate(report.periods):
        head = [period.start.isoformat(), period.end.isoformat(), period.hours]
        for queue in queues:
            yield [*head, queue, *_figures_row(report.figures[queue][index])]
        if together:
            yield [*head, SELECTION_ROW, *_figures_row(report.selection[index])]


def agent_share(agent: AgentFigures, answered: int) -> float | None:
    """An agent's share of the selection's answered calls, in percent."""
    return round(100.0 * agent.calls / answered, 1) if answered else None


def agent_rows(agents: Iterable[AgentFigures], *, answered: int) -> Iterator[list[object]]:
    for agent in agents:
        by_queue = " ".join(f"{queue}:{calls}" for queue, calls in agent.calls_by_queue.items())
        yield [
            agent.agent,
            agent.name,
            agent.calls,
            agent_share(agent, answered),
            agent.talk_seconds,
            agent.aht,
            agent.longest_talk,
            by_queue,
        ]


def is_short_abandon(outcome: str, wait: int | None, rules: KpiRules | None) -> bool | None:
    """Whether a call is a short abandon by its queue's rules (None for calls not abandoned)."""
    if outcome != OUTCOME_ABANDONED:
        return None
    limit = (rules or KpiRules()).short_abandon_seconds
    return wait is not None and wait <= limit


def call_rows(
    calls: Iterable[Sequence[Any]], *, zone: ZoneInfo, rules: Mapping[int, KpiRules]
) -> Iterator[list[object]]:
    """CSV rows of calls read as ``selectors.QUEUE_CALL_FIELDS`` tuples."""
    for number, when, queue, caller, caller_name, outcome, wait, talk, agent, name, uid in calls:
        start: datetime = when.astimezone(zone)
        yield [
            number,
            start.isoformat(),
            queue,
            caller,
            caller_name,
            outcome,
            is_short_abandon(outcome, wait, rules.get(queue)),
            wait,
            talk,
            agent,
            name if agent else "",
            uid,
        ]


def previous_cut(
    now: datetime, *, date_from: date, date_to: date, previous_to: date, zone: ZoneInfo
) -> datetime | None:
    """Where the previous period stops when the range is still going on: at the same wall-clock
    time on the day that corresponds to today, so that "today so far" is compared with
    "yesterday until the same time". None when the range does not hold today."""
    local_now = now.astimezone(zone)
    today = local_now.date()
    if not date_from <= today <= date_to:
        return None
    day = today - (date_to - previous_to)
    wall = datetime.combine(day, local_now.time(), zone)
    return datetime.fromtimestamp(wall.timestamp(), zone)

"""Reads of the call history for pages and the API: never a PBX request.

Figures come from the KPI engine (``kpi``) fed with slim rows read straight from the database
(``values_list``), and each queue's rules (``QueueKpiSettings``). Questions that cannot be
answered as asked raise ``QueryInvalid`` (the API's 400).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from wallboard.history.callers import MissedCaller, missed_callers_find
from wallboard.history.erlang import STAFFING_WINDOW_SECONDS, StaffingHint, staffing_hint
from wallboard.history.intervals import (
    INTERVAL_DAY,
    QueryInvalid,
    day_start,
    days_of,
    local_today,
    periods,
    range_check,
)
from wallboard.history.kpi import (
    AgentFigures,
    KpiRules,
    QueueFigures,
    QueueReport,
    SelectionReport,
    agent_report,
    agents_by_queue,
    arrivals_count,
    queue_report,
    selection_report,
    today_figures,
)
from wallboard.history.models import CallRecord, QueueKpiSettings
from wallboard.history.records import OUTCOME_ANSWERED, OUTCOMES

# The engine's ``CallFact`` fields, in its order.
_FACT_FIELDS = ("queue", "day", "slot", "outcome", "wait", "talk", "agent")
RECORDS_PAGE_SIZE_MAX = 500
# Reports read a range this many days at a time, so a long range is never in memory at once.
REPORT_CHUNK_DAYS = 7
# What ``queue_calls_of_day`` gives for each call, in this order.
QUEUE_CALL_FIELDS = (
    "id",
    "when",
    "queue",
    "caller",
    "caller_name",
    "outcome",
    "wait",
    "talk",
    "agent",
    "destination_name",
    "unique_id",
)
# A report holds at most this many sets of figures (periods x queues): a month of quarter hours
# for 33 queues, a year of days for 273. More is tens of megabytes no page or program needs
# at once.
REPORT_MAX_FIGURES = 100_000


def pbx_zone() -> ZoneInfo:
    """The PBX's time zone: ``when`` and the CDR's date filters are its local time."""
    return ZoneInfo(settings.PBX_TIME_ZONE)


def kpi_rules_get(*, queues: Collection[int]) -> dict[int, KpiRules]:
    """Each queue's KPI rules: its ``QueueKpiSettings`` row, else the defaults."""
    stored = {
        row.queue: row.rules() for row in QueueKpiSettings.objects.filter(queue__in=list(queues))
    }
    return {queue: stored.get(queue, KpiRules()) for queue in queues}


def _days(date_from: date, date_to: date) -> QuerySet:
    """The call records of these local days.

    Days are listed rather than given as a range: with equality on both columns of the
    day+queue index SQLite uses it, where a range made it pick the queue+time index and read
    every row of the queues."""
    return CallRecord.objects.filter(day__in=days_of(date_from, date_to))


def _facts(*, date_from: date, date_to: date, queues: Collection[int] | None) -> QuerySet:
    """The queue calls of a range as ``CallFact`` tuples (days are local PBX days)."""
    calls = _days(date_from, date_to)
    if queues is None:
        calls = calls.filter(queue__isnull=False)
    else:
        calls = calls.filter(queue__in=list(queues))
    return calls.order_by().values_list(*_FACT_FIELDS)


def queue_figures(
    *, queues: Collection[int], date_from: date, date_to: date, interval: str
) -> QueueReport:
    """Every figure of these queues for each period of the range (empty periods included) and
    for the whole range. Raises ``QueryInvalid`` for a range the interval cannot serve, or one
    that would make more than ``REPORT_MAX_FIGURES`` periods over all the queues."""
    range_check(date_from, date_to, interval)
    _figures_cap_check(queues=queues, date_from=date_from, date_to=date_to, interval=interval)
    return queue_report(
        _facts(date_from=date_from, date_to=date_to, queues=queues),
        rules=kpi_rules_get(queues=queues),
        date_from=date_from,
        date_to=date_to,
        interval=interval,
        zone=pbx_zone(),
    )


def _figures_cap_check(
    *, queues: Collection[int], date_from: date, date_to: date, interval: str
) -> None:
    """Refuse a report of more than ``REPORT_MAX_FIGURES`` sets of figures."""
    cells = len(periods(date_from, date_to, interval, pbx_zone())) * len(queues)
    if cells > REPORT_MAX_FIGURES:
        raise QueryInvalid(
            f"{len(queues)} queues over this range at the interval {interval!r} make {cells:,} "
            f"sets of figures (at most {REPORT_MAX_FIGURES:,}); choose fewer queues, a coarser "
            "interval or a shorter range"
        )


def queues_with_calls(*, date_from: date, date_to: date) -> list[int]:
    """The queues that have queue calls in the range (a queue the PBX no longer lists
    included), in order."""
    found = (
        CallRecord.objects.filter(day__gte=date_from, day__lte=date_to, queue__isnull=False)
        .order_by("queue")
        .values_list("queue", flat=True)
        .distinct()
    )
    return list(found)


def queue_figures_today(
    *, queues: Collection[int], now: datetime | None = None
) -> dict[int, QueueFigures]:
    """Each queue's figures for the PBX's today so far (the boards' KPIs)."""
    zone = pbx_zone()
    today = local_today(now or timezone.now(), zone)
    return today_figures(
        _facts(date_from=today, date_to=today, queues=queues),
        rules=kpi_rules_get(queues=queues),
        today=today,
        zone=zone,
    )


def agent_figures(
    *, date_from: date, date_to: date, queues: Collection[int] | None = None
) -> list[AgentFigures]:
    """Each agent's answered queue calls and talk time over the range, most calls first."""
    range_check(date_from, date_to, INTERVAL_DAY)
    answered = _facts(date_from=date_from, date_to=date_to, queues=queues).filter(
        outcome=OUTCOME_ANSWERED
    )
    return _agents_named(agent_report(answered), date_from=date_from, date_to=date_to)


def _agents_named(
    figures: list[AgentFigures], *, date_from: date, date_to: date
) -> list[AgentFigures]:
    """The agents' figures with the latest name the PBX wrote for each of them in the range.

    One query per agent, each the newest row of the agent+time index: grouping all the range's
    rows by agent read every call of a month again (the agent index alone does not bound the
    days), ten times slower for a hundred agents."""
    if not figures:
        return figures
    zone = pbx_zone()
    start, end = day_start(date_from, zone), day_start(date_to + timedelta(days=1), zone)
    named = []
    for figure in figures:
        name = (
            CallRecord.objects.filter(agent=figure.agent, when__gte=start, when__lt=end)
            .exclude(destination_name="")
            .order_by("-when")
            .values_list("destination_name", flat=True)
            .first()
        )
        named.append(dataclasses.replace(figure, name=name or ""))
    return named


@dataclass(frozen=True)
class RecordPage:
    """One page of call records, newest first."""

    records: list[CallRecord]
    total: int
    page: int
    page_size: int
    pages: int


def call_records_page(
    *,
    date_from: date,
    date_to: date,
    queues: Collection[int] | None = None,
    agent: str | None = None,
    outcome: str | None = None,
    caller: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> RecordPage:
    """Stored call records of a range (every row, queue call or not, unless filtered), newest
    first. ``caller`` matches any part of the caller's number; ``raw`` is not loaded."""
    range_check(date_from, date_to, INTERVAL_DAY)
    if outcome is not None and outcome not in OUTCOMES:
        raise QueryInvalid(f"Unknown outcome {outcome!r}; use one of {', '.join(OUTCOMES)}")
    _page_check(page, page_size)
    records = _days(date_from, date_to)
    if queues is not None:
        records = records.filter(queue__in=list(queues))
    if agent:
        records = records.filter(agent=agent)
    if outcome:
        records = records.filter(outcome=outcome)
    if caller:
        records = records.filter(caller__contains=caller)
    return _page(records.defer("raw"), page=page, page_size=page_size)


def _page_check(page: int, page_size: int) -> None:
    if page < 1 or not 1 <= page_size <= RECORDS_PAGE_SIZE_MAX:
        raise QueryInvalid(
            f"Pages start at 1 and hold 1 to {RECORDS_PAGE_SIZE_MAX} records "
            f"(asked: page {page} of {page_size})"
        )


def _page(records: QuerySet, *, page: int, page_size: int) -> RecordPage:
    """One page of ``records``, newest first."""
    total = records.count()
    start = (page - 1) * page_size
    rows = list(records.order_by("-when", "-id")[start : start + page_size])
    return RecordPage(
        records=rows,
        total=total,
        page=page,
        page_size=page_size,
        pages=max(1, -(-total // page_size)),
    )


def missed_callers(
    *, queues: Collection[int] | None = None, now: datetime | None = None
) -> list[MissedCaller]:
    """Today's outside callers whose queue calls went unanswered and who have not been served
    since (answered in a queue, or called back with an answer), newest first; times in the
    PBX's time zone."""
    zone = pbx_zone()
    today = local_today(now or timezone.now(), zone)
    rows = (
        CallRecord.objects.filter(day=today)
        .filter(Q(queue__isnull=False) | Q(type__iexact="outgoing", status__iexact="answered"))
        .order_by("when", "id")
        .values_list(
            "when", "type", "status", "caller", "destination", "queue", "outcome", "wait", "id"
        )
    )
    return missed_callers_find(
        ((when.astimezone(zone), *rest) for when, *rest in rows), queues=queues
    )


def call_record_get(*, id: int) -> CallRecord | None:
    """One stored call record by the PBX's id (``raw`` not loaded), or None."""
    return CallRecord.objects.defer("raw").filter(id=id).first()


@dataclass(frozen=True)
class OutgoingCall:
    """An agent's own call (an outgoing row): who dialled, whom, how it ended."""

    id: int
    when: datetime  # in the PBX's time zone
    caller: str  # the extension that dialled
    destination: str  # the number dialled, as the PBX wrote it
    status: str  # answered, missed, busy, unauthorized (as the PBX wrote it)
    stored: datetime  # when the wallboard stored the row


def outgoing_calls_since(*, since: datetime, callers: Collection[str]) -> list[OutgoingCall]:
    """The outgoing rows (agents' own calls, click-to-call included) of these extensions that
    started at or after ``since``, oldest first (the caller+time index finds them)."""
    zone = pbx_zone()
    rows = (
        CallRecord.objects.filter(caller__in=list(callers), when__gte=since)
        .filter(type__iexact="outgoing")
        .order_by("when", "id")
        .values_list("id", "when", "caller", "destination", "status", "stored")
    )
    return [
        OutgoingCall(
            id=id,
            when=when.astimezone(zone),
            caller=caller,
            destination=destination,
            status=status,
            stored=stored,
        )
        for id, when, caller, destination, status, stored in rows
    ]


def _arrivals(
    *, rules: Mapping[int, KpiRules], now: datetime, window_seconds: float
) -> dict[int, int]:
    """Calls that arrived in each queue in the ``window_seconds`` up to ``now`` (queue calls
    only; short abandons left out where the queue leaves them out)."""
    recent = (
        CallRecord.objects.filter(
            queue__in=list(rules),
            when__gte=now - timedelta(seconds=window_seconds),
            when__lte=now,
        )
        .exclude(outcome="")
        .order_by()
        .values_list("queue", "outcome", "wait")
    )
    return arrivals_count(recent, rules=rules)


def staffing_hint_get(
    *, queue: int, now: datetime | None = None, window_seconds: float = STAFFING_WINDOW_SECONDS
) -> StaffingHint | None:
    """How many agents ``queue`` needs for its service-level goal at the arrival rate of the
    last ``window_seconds`` and today's AHT (``erlang``); None while there is too little to go
    on. Calls still in progress are not in the CDR yet, so the newest minutes count low."""
    now = now or timezone.now()
    rules = kpi_rules_get(queues=[queue])
    today = queue_figures_today(queues=[queue], now=now)[queue]
    offered = _arrivals(rules=rules, now=now, window_seconds=window_seconds)[queue]
    return staffing_hint(
        offered=offered,
        window_seconds=window_seconds,
        aht_seconds=today.aht,
        target_seconds=rules[queue].target_seconds,
        target_percent=rules[queue].target_percent,
    )


@dataclass(frozen=True)
class BoardToday:
    """Everything the live boards show of today for some queues, computed at once: each
    queue's figures, its agents' answered calls and talk, and its staffing hint."""

    day: date
    computed_at: datetime  # the instant the figures are as of
    day_end: datetime  # the end of the PBX's ``day``: the figures are for that day only
    rules: dict[int, KpiRules]
    figures: dict[int, QueueFigures]
    agents: dict[int, dict[str, tuple[int, int]]]  # queue -> agent -> (calls, talk seconds)
    window_seconds: float
    arrivals: dict[int, int]  # calls that arrived in the staffing window
    staffing: dict[int, StaffingHint | None]


def board_today_get(*, queues: Collection[int], now: datetime | None = None) -> BoardToday:
    """Today so far for the boards, for these queues: three queries (the rules, today's queue
    calls, the staffing window's arrivals) and the KPI engine, whatever the number of queues."""
    now = now or timezone.now()
    zone = pbx_zone()
    today = local_today(now, zone)
    rules = kpi_rules_get(queues=queues)
    facts = list(_facts(date_from=today, date_to=today, queues=list(rules)))
    figures = today_figures(facts, rules=rules, today=today, zone=zone)
    arrivals = _arrivals(rules=rules, now=now, window_seconds=STAFFING_WINDOW_SECONDS)
    staffing = {
        queue: staffing_hint(
            offered=arrivals[queue],
            window_seconds=STAFFING_WINDOW_SECONDS,
            aht_seconds=figures[queue].aht,
            target_seconds=rule.target_seconds,
            target_percent=rule.target_percent,
        )
        for queue, rule in rules.items()
    }
    return BoardToday(
        day=today,
        computed_at=now,
        day_end=day_start(today + timedelta(days=1), zone),
        rules=rules,
        figures=figures,
        agents=agents_by_queue(facts),
        window_seconds=STAFFING_WINDOW_SECONDS,
        arrivals=arrivals,
        staffing=staffing,
    )


# --- reports over a selection of queues ---------------------------------------------------------


def report_figures(
    *,
    queues: Collection[int],
    date_from: date,
    date_to: date,
    interval: str,
    before: datetime | None = None,
    detail: bool = True,
    queue_periods: bool = True,
) -> SelectionReport:
    """Every figure of these queues, each and taken together, for each period of the range and
    for the whole range (``kpi.selection_report``); with ``detail`` also the calls by hour of
    day and each agent's answered calls (with names); without ``queue_periods`` each queue's
    totals only. ``before`` leaves out calls that started at or after it (a previous period
    compared with one that is still going on).

    The range is read ``REPORT_CHUNK_DAYS`` days at a time and counted as it comes, so memory
    does not grow with the range. Raises ``QueryInvalid`` for a range the interval cannot
    serve, and with ``queue_periods`` for more than ``REPORT_MAX_FIGURES`` sets of figures
    (without, the selection's periods are the interval's, at most a month of quarter hours)."""
    range_check(date_from, date_to, interval)
    queues = sorted(set(queues))
    if queue_periods:
        _figures_cap_check(queues=queues, date_from=date_from, date_to=date_to, interval=interval)
    report = selection_report(
        _fact_chunks(queues=queues, date_from=date_from, date_to=date_to, before=before),
        rules=kpi_rules_get(queues=queues),
        date_from=date_from,
        date_to=date_to,
        interval=interval,
        zone=pbx_zone(),
        detail=detail,
        queue_periods=queue_periods,
    )
    agents = _agents_named(report.agents, date_from=date_from, date_to=date_to)
    return dataclasses.replace(report, agents=agents)


def _fact_chunks(
    *, queues: list[int], date_from: date, date_to: date, before: datetime | None
) -> Iterator[list[tuple]]:
    days = days_of(date_from, date_to)
    for first in range(0, len(days), REPORT_CHUNK_DAYS):
        calls = CallRecord.objects.filter(
            day__in=days[first : first + REPORT_CHUNK_DAYS], queue__in=queues
        )
        if before is not None:
            calls = calls.filter(when__lt=before)
        yield list(calls.order_by().values_list(*_FACT_FIELDS))


def queue_calls(
    *,
    queues: Collection[int],
    date_from: date,
    date_to: date,
    slots: tuple[int, int] | None = None,
    agent: str | None = None,
) -> QuerySet:
    """The queue calls of these queues in the range: the calls the reports count. ``slots``
    (first, end): only those that started in these quarter hours of their day (a report's
    quarter hour or hour); ``agent``: only those the agent answered. Unordered; ``raw`` is not
    loaded."""
    calls = _days(date_from, date_to).filter(queue__in=list(queues))
    if slots is not None:
        calls = calls.filter(slot__gte=slots[0], slot__lt=slots[1])
    if agent:
        calls = calls.filter(agent=agent, outcome=OUTCOME_ANSWERED)
    return calls.defer("raw")


def queue_calls_page(
    *,
    queues: Collection[int],
    date_from: date,
    date_to: date,
    slots: tuple[int, int] | None = None,
    agent: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> RecordPage:
    """One page of ``queue_calls``, newest first."""
    _page_check(page, page_size)
    calls = queue_calls(
        queues=queues, date_from=date_from, date_to=date_to, slots=slots, agent=agent
    )
    return _page(calls, page=page, page_size=page_size)


def queue_calls_of_day(
    *,
    queues: Collection[int],
    day: date,
    slots: tuple[int, int] | None = None,
    agent: str | None = None,
) -> list[tuple]:
    """One day of ``queue_calls`` as ``QUEUE_CALL_FIELDS`` tuples, oldest first: an export
    reads a range a day at a time, so any range streams in little memory."""
    calls = queue_calls(queues=queues, date_from=day, date_to=day, slots=slots, agent=agent)
    return list(calls.order_by("when", "id").values_list(*QUEUE_CALL_FIELDS))

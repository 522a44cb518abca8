"""The KPI engine: every queue and agent figure, for any range and interval, from plain records.

Pure functions (standard library only; no database, no Django settings): the selectors read
slim rows (``CallFact``) and each queue's rules (``KpiRules``) and hand them in. The same
aggregation serves reports (``queue_report``: a range at an interval) and the boards' "today so
far" (``today_figures``), so a number on the wall and in a report can never disagree. Several
queues taken together (``selection_report``, the reports page) are counted by the same rules.
docs/kpi.md defines every figure, with its formula and the reporting tools it matches.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from wallboard.history.intervals import (
    INTERVAL_DAY,
    INTERVAL_HOUR,
    INTERVAL_MONTH,
    INTERVAL_WEEK,
    SLOT_SECONDS,
    SLOTS_PER_HOUR,
    Period,
    day_start,
    period_key,
    periods,
)
from wallboard.history.records import (
    OUTCOME_ABANDONED,
    OUTCOME_ANSWERED,
    OUTCOME_BUSY,
    OUTCOME_TIMEOUT,
    OUTCOME_VOICEMAIL,
)

# Service-level formulas (T = the queue's target in seconds). docs/kpi.md, "Service level".
FORMULA_ANSWERED = "answered"  # answered within T / answered
FORMULA_OFFERED = "offered"  # answered within T / (answered + unanswered)
FORMULA_REMOVED = "removed"  # (answered within T + abandoned within T) / offered
FORMULAS = (FORMULA_ANSWERED, FORMULA_OFFERED, FORMULA_REMOVED)
# ``QueueFigures.formula`` of a selection whose queues count the service level differently.
FORMULA_MIXED = "mixed"

# ``QueueFigures.queue`` of figures that add several queues together: no PBX queue is number 0.
SELECTION = 0

DEFAULT_TARGET_SECONDS = 20
DEFAULT_TARGET_PERCENT = 80
DEFAULT_SHORT_ABANDON_SECONDS = 5


@dataclass(frozen=True)
class KpiRules:
    """How one queue's figures are counted (``models.QueueKpiSettings``, or these defaults)."""

    target_seconds: int = DEFAULT_TARGET_SECONDS
    target_percent: int = DEFAULT_TARGET_PERCENT
    formula: str = FORMULA_OFFERED
    short_abandon_seconds: int = DEFAULT_SHORT_ABANDON_SECONDS
    exclude_short_abandons: bool = False

    def __post_init__(self) -> None:
        if self.formula not in FORMULAS:
            raise ValueError(f"Unknown service-level formula {self.formula!r}")


class CallFact(NamedTuple):
    """One queue call as the engine needs it (the order of ``selectors`` values_list reads)."""

    queue: int
    day: date
    slot: int
    outcome: str
    wait: int | None
    talk: int | None
    agent: str  # "" unless answered


@dataclass(frozen=True)
class QueueFigures:
    """Every figure of one queue over one period (docs/kpi.md defines each).

    Percentages are 0-100 with one decimal, times are seconds (means with one decimal); a figure
    that has nothing to be computed from (no answered call for the ASA...) is None.
    """

    queue: int
    offered: int
    answered: int
    unanswered: int  # abandoned + voicemail + timed_out + busy
    abandoned: int  # short abandons included unless the rules exclude them
    short_abandoned: int  # always reported, whether excluded or not
    voicemail: int
    timed_out: int
    busy: int
    answered_within_target: int
    service_level: float | None
    service_level_met: bool | None  # service_level >= target_percent
    asa: float | None  # mean wait of answered calls
    aht: float | None  # mean talk of answered calls (the PBX has no wrap-up)
    longest_wait: int | None
    abandon_rate: float | None
    talk_seconds: int
    wait_unknown: int  # calls left out of waits and service level: the PBX sent no wait
    target_seconds: int
    target_percent: int
    formula: str
    short_abandons_excluded: bool


@dataclass(frozen=True)
class QueueReport:
    """A range at an interval: ``figures[queue][i]`` belongs to ``periods[i]``; ``totals`` is
    each queue over the whole range."""

    interval: str
    periods: list[Period]
    figures: dict[int, list[QueueFigures]]
    totals: dict[int, QueueFigures]


@dataclass(frozen=True)
class AgentFigures:
    """An agent's answered queue calls: how many, how long they talked, in which queues."""

    agent: str
    calls: int
    talk_seconds: int
    aht: float | None
    longest_talk: int
    calls_by_queue: dict[int, int]
    name: str = ""  # the ``destination_name`` the PBX wrote for the agent; the selector fills it in


# --- aggregation ------------------------------------------------------------------------------

# The running counts of one queue in one period, in a plain list for speed.
_ANSWERED = 0
_ANSWERED_TIMED = 1  # answered with a known wait
_ANSWERED_WITHIN = 2
_WAIT_SUM = 3  # of answered calls with a known wait
_TALK_SUM = 4
_ABANDONED_LONG = 5  # abandoned, not short (unknown waits included: they cannot be called short)
_SHORT = 6
_ABANDONED_WITHIN = 7  # long abandons with a known wait <= T
_SHORT_WITHIN = 8  # short abandons with a wait <= T
_ABANDONED_UNKNOWN = 9
_VOICEMAIL = 10
_TIMEOUT = 11
_BUSY = 12
_LONGEST = 13  # merged with max, all others with +
_UNKNOWN = 14
_SIZE = 15


def _accumulator() -> list[int]:
    return [0] * _SIZE


def _key_function(interval: str) -> Callable[[date, int], object]:
    """``period_key`` for one interval, picked once instead of once per call."""
    if interval == INTERVAL_HOUR:
        return lambda day, slot: (day, slot // SLOTS_PER_HOUR)
    if interval in (INTERVAL_DAY, INTERVAL_WEEK, INTERVAL_MONTH):
        # Days repeat thousands of times in a range: work out each day's key once.
        cache: dict[date, object] = {}

        def day_key(day: date, slot: int) -> object:
            key = cache.get(day)
            if key is None:
                key = cache[day] = period_key(interval, day, slot)
            return key

        return day_key
    return lambda day, slot: (day, slot)


def calls_count(
    calls: Iterable[Sequence[Any]],
    *,
    rules: Mapping[int, KpiRules],
    keys: Collection[object],
    interval: str,
    key_of: Callable[[date, int], object] | None = None,
    table: dict[int, dict[object, list[int]]] | None = None,
) -> dict[int, dict[object, list[int]]]:
    """Count calls (``CallFact`` order) into per-queue, per-period accumulators.

    Only the queues in ``rules`` and the period keys in ``keys`` are counted; anything else is
    ignored. The one pass every figure of every report is made from.

    ``key_of`` groups calls by something other than the interval's periods (``hour_of_day``);
    ``table`` (one this function returned for the same rules and keys) is counted on, so a long
    range can be read and counted a chunk at a time.
    """
    if table is None:
        table = {queue: {key: _accumulator() for key in keys} for queue in rules}
    limits = {
        queue: (rule.target_seconds, rule.short_abandon_seconds) for queue, rule in rules.items()
    }
    key_of = key_of or _key_function(interval)
    for queue, day, slot, outcome, wait, talk, _agent in calls:
        periods_of_queue = table.get(queue)
        if periods_of_queue is None:
            continue
        acc = periods_of_queue.get(key_of(day, slot))
        if acc is None:
            continue
        target, short = limits[queue]
        if wait is None:
            acc[_UNKNOWN] += 1
        elif wait > acc[_LONGEST]:
            acc[_LONGEST] = wait
        if outcome == OUTCOME_ANSWERED:
            acc[_ANSWERED] += 1
            acc[_TALK_SUM] += talk or 0
            if wait is not None:
                acc[_ANSWERED_TIMED] += 1
                acc[_WAIT_SUM] += wait
                if wait <= target:
                    acc[_ANSWERED_WITHIN] += 1
        elif outcome == OUTCOME_ABANDONED:
            if wait is None:
                acc[_ABANDONED_LONG] += 1
                acc[_ABANDONED_UNKNOWN] += 1
            elif wait <= short:
                acc[_SHORT] += 1
                if wait <= target:
                    acc[_SHORT_WITHIN] += 1
            else:
                acc[_ABANDONED_LONG] += 1
                if wait <= target:
                    acc[_ABANDONED_WITHIN] += 1
        elif outcome == OUTCOME_VOICEMAIL:
            acc[_VOICEMAIL] += 1
        elif outcome == OUTCOME_TIMEOUT:
            acc[_TIMEOUT] += 1
        elif outcome == OUTCOME_BUSY:
            acc[_BUSY] += 1
    return table


def accumulators_merge(accumulators: Iterable[list[int]]) -> list[int]:
    """One accumulator for several periods (a range's total)."""
    total = _accumulator()
    for acc in accumulators:
        for index in range(_SIZE):
            if index == _LONGEST:
                total[index] = max(total[index], acc[index])
            else:
                total[index] += acc[index]
    return total


def figures_of(acc: list[int], *, queue: int, rules: KpiRules) -> QueueFigures:
    """The figures of one accumulator under one queue's rules (docs/kpi.md, "Figures")."""
    excluded = rules.exclude_short_abandons
    answered = acc[_ANSWERED]
    short = acc[_SHORT]
    abandoned = acc[_ABANDONED_LONG] + (0 if excluded else short)
    unanswered = abandoned + acc[_VOICEMAIL] + acc[_TIMEOUT] + acc[_BUSY]
    offered = answered + unanswered
    within = acc[_ANSWERED_WITHIN]
    level = _percent(*_service_level_parts(acc, rules=rules, unanswered=unanswered))
    timed = acc[_ANSWERED_TIMED]
    counted = answered + acc[_ABANDONED_LONG] + short + acc[_VOICEMAIL] + acc[_TIMEOUT] + acc[_BUSY]
    return QueueFigures(
        queue=queue,
        offered=offered,
        answered=answered,
        unanswered=unanswered,
        abandoned=abandoned,
        short_abandoned=short,
        voicemail=acc[_VOICEMAIL],
        timed_out=acc[_TIMEOUT],
        busy=acc[_BUSY],
        answered_within_target=within,
        service_level=level,
        service_level_met=None if level is None else level >= rules.target_percent,
        asa=round(acc[_WAIT_SUM] / timed, 1) if timed else None,
        aht=round(acc[_TALK_SUM] / answered, 1) if answered else None,
        longest_wait=acc[_LONGEST] if counted > acc[_UNKNOWN] else None,
        abandon_rate=_percent(abandoned, offered),
        talk_seconds=acc[_TALK_SUM],
        wait_unknown=acc[_UNKNOWN],
        target_seconds=rules.target_seconds,
        target_percent=rules.target_percent,
        formula=rules.formula,
        short_abandons_excluded=excluded,
    )


def _service_level_parts(acc: list[int], *, rules: KpiRules, unanswered: int) -> tuple[int, int]:
    """The service level's numerator and denominator by the queue's formula. Only calls whose
    wait tells whether they met the target count towards it."""
    within = acc[_ANSWERED_WITHIN]
    if rules.formula == FORMULA_ANSWERED:
        return within, acc[_ANSWERED_TIMED]
    if rules.formula == FORMULA_OFFERED:
        return within, acc[_ANSWERED_TIMED] + unanswered
    excluded = rules.exclude_short_abandons
    abandoned_within = acc[_ABANDONED_WITHIN] + (0 if excluded else acc[_SHORT_WITHIN])
    return (
        within + abandoned_within,
        acc[_ANSWERED_TIMED] + unanswered - acc[_ABANDONED_UNKNOWN],
    )


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole > 0 else None


# --- reports ----------------------------------------------------------------------------------


def queue_report(
    calls: Iterable[Sequence[Any]],
    *,
    rules: Mapping[int, KpiRules],
    date_from: date,
    date_to: date,
    interval: str,
    zone: ZoneInfo,
) -> QueueReport:
    """Every queue in ``rules``, every period of the range (empty ones too), and the totals.

    ``calls`` may hold other queues and days; they are ignored. Raises ``RangeInvalid`` for a
    range the interval cannot serve (``intervals.range_check``).
    """
    report_periods = periods(date_from, date_to, interval, zone)
    keys = [period.key for period in report_periods]
    table = calls_count(calls, rules=rules, keys=keys, interval=interval)
    figures, totals, _merged = _queue_figures(table, rules=rules, keys=keys)
    return QueueReport(interval=interval, periods=report_periods, figures=figures, totals=totals)


def _queue_figures(
    table: Mapping[int, Mapping[object, list[int]]],
    *,
    rules: Mapping[int, KpiRules],
    keys: Sequence[object],
    per_period: bool = True,
) -> tuple[dict[int, list[QueueFigures]], dict[int, QueueFigures], dict[int, list[int]]]:
    """Each queue's figures per period (in ``keys`` order; none unless ``per_period``) and over
    all of them, and the merged accumulator behind each queue's total."""
    figures: dict[int, list[QueueFigures]] = {}
    totals: dict[int, QueueFigures] = {}
    merged: dict[int, list[int]] = {}
    for queue, by_key in table.items():
        rule = rules[queue]
        if per_period:
            # Quiet periods all have the same (immutable) figures: build them once per queue.
            empty = figures_of(_accumulator(), queue=queue, rules=rule)
            figures[queue] = [
                figures_of(acc, queue=queue, rules=rule) if any(acc) else empty
                for acc in (by_key[key] for key in keys)
            ]
        merged[queue] = accumulators_merge(by_key.values())
        totals[queue] = figures_of(merged[queue], queue=queue, rules=rule)
    return figures, totals, merged


def today_figures(
    calls: Iterable[Sequence[Any]],
    *,
    rules: Mapping[int, KpiRules],
    today: date,
    zone: ZoneInfo,
) -> dict[int, QueueFigures]:
    """Each queue's figures for ``today`` so far: the boards' KPIs, from the same aggregation as
    every report (a one-day range at the day interval)."""
    report = queue_report(
        calls, rules=rules, date_from=today, date_to=today, interval=INTERVAL_DAY, zone=zone
    )
    return report.totals


def agent_report(calls: Iterable[Sequence[Any]]) -> list[AgentFigures]:
    """Each agent's answered calls and talk time, most calls first (``CallFact`` order; other
    outcomes are ignored)."""
    counts: dict[str, list[int]] = {}
    queues: dict[str, dict[int, int]] = {}
    for queue, _day, _slot, outcome, _wait, talk, agent in calls:
        if outcome != OUTCOME_ANSWERED or not agent:
            continue
        acc = counts.get(agent)
        if acc is None:
            acc = counts[agent] = [0, 0, 0]
            queues[agent] = {}
        seconds = talk or 0
        acc[0] += 1
        acc[1] += seconds
        acc[2] = max(acc[2], seconds)
        queues[agent][queue] = queues[agent].get(queue, 0) + 1
    result = [
        AgentFigures(
            agent=agent,
            calls=calls_taken,
            talk_seconds=talk_total,
            aht=round(talk_total / calls_taken, 1) if calls_taken else None,
            longest_talk=longest,
            calls_by_queue=dict(sorted(queues[agent].items())),
        )
        for agent, (calls_taken, talk_total, longest) in counts.items()
    ]
    result.sort(key=lambda figures: (-figures.calls, figures.agent))
    return result


# --- a selection of queues taken together -----------------------------------------------------

HOURS_OF_DAY = range(24)


@dataclass(frozen=True)
class SelectionReport:
    """A range at an interval over a selection of queues (those in ``rules``).

    ``figures``/``totals`` are each queue's, as in ``QueueReport`` (``figures`` is empty unless
    asked for: ``queue_periods``); ``selection[i]`` is the selection taken together in
    ``periods[i]`` and ``selection_total`` over the whole range (``selection_figures``: ``queue``
    is ``SELECTION``). ``by_hour[h]`` is the selection's calls that started in the local hour h
    (0-23) of any day of the range, and ``agents`` each agent's answered calls of the selection;
    both are empty unless asked for (``detail``).
    """

    interval: str
    periods: list[Period]
    figures: dict[int, list[QueueFigures]]
    totals: dict[int, QueueFigures]
    selection: list[QueueFigures]
    selection_total: QueueFigures
    rules: dict[int, KpiRules]
    by_hour: list[QueueFigures] = field(default_factory=list)
    agents: list[AgentFigures] = field(default_factory=list)


def selection_figures(
    accumulators: Mapping[int, list[int]], *, rules: Mapping[int, KpiRules]
) -> QueueFigures:
    """The figures of several queues' calls taken together (``queue`` is ``SELECTION``).

    Each call is judged by its own queue's rules (target T, short abandons and whether they
    count), so every count is the sum of the queues' own counts and the service level is the
    sum of their numerators over the sum of their denominators, each by its queue's formula;
    ASA, AHT, the longest wait and the abandon rate are over all the calls. ``rules`` holds every
    queue of the selection (``accumulators`` may leave quiet ones out): when their rules differ,
    the target and the goal shown are the highest (strictest) of them, ``formula`` is
    ``FORMULA_MIXED``, and ``short_abandons_excluded`` says whether any queue leaves them out.
    """
    answered = answered_timed = within = wait_sum = talk = 0
    abandoned = short = voicemail = timed_out = busy = unknown = 0
    numerator = denominator = 0
    longest: int | None = None
    for queue, acc in accumulators.items():
        if not any(acc):
            continue
        rule = rules[queue]
        queue_abandoned = acc[_ABANDONED_LONG] + (0 if rule.exclude_short_abandons else acc[_SHORT])
        queue_unanswered = queue_abandoned + acc[_VOICEMAIL] + acc[_TIMEOUT] + acc[_BUSY]
        part, whole = _service_level_parts(acc, rules=rule, unanswered=queue_unanswered)
        numerator += part
        denominator += whole
        answered += acc[_ANSWERED]
        answered_timed += acc[_ANSWERED_TIMED]
        within += acc[_ANSWERED_WITHIN]
        wait_sum += acc[_WAIT_SUM]
        talk += acc[_TALK_SUM]
        abandoned += queue_abandoned
        short += acc[_SHORT]
        voicemail += acc[_VOICEMAIL]
        timed_out += acc[_TIMEOUT]
        busy += acc[_BUSY]
        unknown += acc[_UNKNOWN]
        counted = (
            acc[_ANSWERED]
            + acc[_ABANDONED_LONG]
            + acc[_SHORT]
            + acc[_VOICEMAIL]
            + acc[_TIMEOUT]
            + acc[_BUSY]
        )
        if counted > acc[_UNKNOWN]:
            longest = acc[_LONGEST] if longest is None else max(longest, acc[_LONGEST])
    target_seconds, target_percent, formula, excluded = _rules_summary(rules.values())
    unanswered = abandoned + voicemail + timed_out + busy
    offered = answered + unanswered
    level = _percent(numerator, denominator)
    return QueueFigures(
        queue=SELECTION,
        offered=offered,
        answered=answered,
        unanswered=unanswered,
        abandoned=abandoned,
        short_abandoned=short,
        voicemail=voicemail,
        timed_out=timed_out,
        busy=busy,
        answered_within_target=within,
        service_level=level,
        service_level_met=None if level is None else level >= target_percent,
        asa=round(wait_sum / answered_timed, 1) if answered_timed else None,
        aht=round(talk / answered, 1) if answered else None,
        longest_wait=longest,
        abandon_rate=_percent(abandoned, offered),
        talk_seconds=talk,
        wait_unknown=unknown,
        target_seconds=target_seconds,
        target_percent=target_percent,
        formula=formula,
        short_abandons_excluded=excluded,
    )


def _rules_summary(rules: Iterable[KpiRules]) -> tuple[int, int, str, bool]:
    """(target seconds, goal %, formula, short abandons excluded) of a selection's queues."""
    listed = list(rules) or [KpiRules()]
    formulas = {rule.formula for rule in listed}
    return (
        max(rule.target_seconds for rule in listed),
        max(rule.target_percent for rule in listed),
        formulas.pop() if len(formulas) == 1 else FORMULA_MIXED,
        any(rule.exclude_short_abandons for rule in listed),
    )


def hour_of_day(zone: ZoneInfo) -> Callable[[date, int], object]:
    """A ``calls_count`` key: the local wall-clock hour (0-23) a call of ``day``/``slot``
    started in. Both passes of the hour the autumn change repeats are that one hour."""
    hours: dict[tuple[date, int], int] = {}
    starts: dict[date, float] = {}

    def key(day: date, slot: int) -> object:
        hour = hours.get((day, slot))
        if hour is None:
            start = starts.get(day)
            if start is None:
                start = starts[day] = day_start(day, zone).timestamp()
            moment = datetime.fromtimestamp(start + slot * SLOT_SECONDS, zone)
            hour = hours[(day, slot)] = moment.hour
        return hour

    return key


def agent_figures_merge(parts: Iterable[Iterable[AgentFigures]]) -> list[AgentFigures]:
    """Agents' figures from several pieces of the same calls (``agent_report`` of each), as one
    ``agent_report`` of them all would give: most calls first."""
    merged: dict[str, AgentFigures] = {}
    for part in parts:
        for figures in part:
            known = merged.get(figures.agent)
            if known is None:
                merged[figures.agent] = figures
                continue
            by_queue = dict(known.calls_by_queue)
            for queue, count in figures.calls_by_queue.items():
                by_queue[queue] = by_queue.get(queue, 0) + count
            calls = known.calls + figures.calls
            talk = known.talk_seconds + figures.talk_seconds
            merged[figures.agent] = AgentFigures(
                agent=figures.agent,
                calls=calls,
                talk_seconds=talk,
                aht=round(talk / calls, 1) if calls else None,
                longest_talk=max(known.longest_talk, figures.longest_talk),
                calls_by_queue=dict(sorted(by_queue.items())),
                name=known.name or figures.name,
            )
    result = list(merged.values())
    result.sort(key=lambda figures: (-figures.calls, figures.agent))
    return result


def selection_report(
    chunks: Iterable[Sequence[Sequence[Any]]],
    *,
    rules: Mapping[int, KpiRules],
    date_from: date,
    date_to: date,
    interval: str,
    zone: ZoneInfo,
    detail: bool = True,
    queue_periods: bool = True,
) -> SelectionReport:
    """Every figure of the queues in ``rules`` over a range at an interval, each queue's and
    the selection's taken together (``selection_figures``); with ``detail`` also the selection
    by hour of day and each agent's answered calls. Without ``queue_periods`` each queue gets
    its totals only (a page that draws the selection needs no more, and a month of quarter
    hours is some 60,000 figures for 20 queues).

    ``chunks`` are the calls (``CallFact`` order) in pieces, each a sequence: they are counted
    as they come, so a long range read a few days at a time never has to be in memory at once.
    Raises ``RangeInvalid`` for a range the interval cannot serve.
    """
    report_periods = periods(date_from, date_to, interval, zone)
    keys = [period.key for period in report_periods]
    table = calls_count((), rules=rules, keys=keys, interval=interval)
    hours = calls_count((), rules=rules, keys=HOURS_OF_DAY, interval=interval)
    hour_key = hour_of_day(zone)
    agent_parts: list[list[AgentFigures]] = []
    for chunk in chunks:
        calls_count(chunk, rules=rules, keys=keys, interval=interval, table=table)
        if detail:
            calls_count(
                chunk,
                rules=rules,
                keys=HOURS_OF_DAY,
                interval=interval,
                key_of=hour_key,
                table=hours,
            )
            agent_parts.append(agent_report(chunk))
    figures, totals, merged = _queue_figures(
        table, rules=rules, keys=keys, per_period=queue_periods
    )
    empty = selection_figures({}, rules=rules)
    selection = []
    for key in keys:
        accumulators = {queue: by_key[key] for queue, by_key in table.items()}
        busy = any(any(acc) for acc in accumulators.values())
        selection.append(selection_figures(accumulators, rules=rules) if busy else empty)
    by_hour = []
    if detail:
        by_hour = [
            selection_figures({queue: by_key[hour] for queue, by_key in hours.items()}, rules=rules)
            for hour in HOURS_OF_DAY
        ]
    return SelectionReport(
        interval=interval,
        periods=report_periods,
        figures=figures,
        totals=totals,
        selection=selection,
        selection_total=selection_figures(merged, rules=rules),
        rules=dict(rules),
        by_hour=by_hour,
        agents=agent_figures_merge(agent_parts),
    )


def agents_by_queue(calls: Iterable[Sequence[Any]]) -> dict[int, dict[str, tuple[int, int]]]:
    """Each queue's agents with their answered calls and talk seconds (``CallFact`` order;
    other outcomes are ignored): ``{queue: {agent: (calls, talk_seconds)}}``. The boards' agent
    rows show it for today, per queue like the member rows they sit in."""
    result: dict[int, dict[str, list[int]]] = {}
    for queue, _day, _slot, outcome, _wait, talk, agent in calls:
        if outcome != OUTCOME_ANSWERED or not agent:
            continue
        acc = result.setdefault(queue, {}).setdefault(agent, [0, 0])
        acc[0] += 1
        acc[1] += talk or 0
    return {
        queue: {agent: (acc[0], acc[1]) for agent, acc in agents.items()}
        for queue, agents in result.items()
    }


def arrivals_count(
    calls: Iterable[tuple[int, str, int | None]], *, rules: Mapping[int, KpiRules]
) -> dict[int, int]:
    """How many calls arrived in each queue of ``rules``, from ``(queue, outcome, wait)`` of
    queue calls: the staffing hint's arrivals. Short abandons are left out where the queue
    leaves them out of offered; other queues are ignored."""
    counts = dict.fromkeys(rules, 0)
    for queue, outcome, wait in calls:
        rule = rules.get(queue)
        if rule is None:
            continue
        short = outcome == OUTCOME_ABANDONED and wait is not None
        if short and rule.exclude_short_abandons and wait <= rule.short_abandon_seconds:
            continue
        counts[queue] += 1
    return counts

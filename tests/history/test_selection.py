"""Several queues taken together (the reports page): each call judged by its own queue's rules,
hand-computed; counting in pieces equals counting at once; calls by hour of day; agents."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from wallboard.history.kpi import (
    FORMULA_MIXED,
    FORMULAS,
    SELECTION,
    CallFact,
    KpiRules,
    agent_figures_merge,
    agent_report,
    queue_report,
    selection_report,
)
from wallboard.history.records import OUTCOMES

from .conftest import ZONE

DAY = date(2026, 11, 20)
AUTUMN = date(2026, 10, 25)


def fact(queue, slot, outcome, wait, talk=None, agent="", day=DAY) -> CallFact:
    return CallFact(queue, day, slot, outcome, wait, talk, agent)


# Queue 100: T = 20 s, the default formula (answered within T / offered), short abandons count.
# Queue 101: T = 60 s, formula "answered", short abandons (within 5 s) left out.
CALLS = [
    fact(100, 40, "answered", 10, 100, "201"),  # within 20 s
    fact(100, 40, "answered", 30, 200, "202"),  # late for queue 100
    fact(100, 41, "abandoned", 3),  # short, counts in 100
    fact(100, 41, "busy", 0),
    fact(101, 40, "answered", 30, 50, "201"),  # within 60 s
    fact(101, 44, "answered", 90, 70, "203"),  # late for queue 101
    fact(101, 44, "answered", None, 20, "203"),  # wait unknown
    fact(101, 44, "abandoned", 2),  # short, left out in 101
    fact(101, 45, "abandoned", 40),
]
RULES = {
    100: KpiRules(target_seconds=20),
    101: KpiRules(target_seconds=60, formula="answered", exclude_short_abandons=True),
}


def report(calls=CALLS, rules=RULES, interval="day", chunks=None, **kwargs):
    return selection_report(
        chunks if chunks is not None else [calls],
        rules=rules,
        date_from=DAY,
        date_to=DAY,
        interval=interval,
        zone=ZONE,
        **kwargs,
    )


def test_it_judges_each_call_by_its_own_queues_rules():
    total = report().selection_total

    assert total.queue == SELECTION
    # 100: 2 answered + short abandon + busy = 4; 101: 3 answered + 1 long abandon = 4.
    assert (total.offered, total.answered, total.unanswered) == (8, 5, 3)
    assert (total.abandoned, total.short_abandoned, total.busy) == (2, 2, 1)
    # 100: 1 within 20 s of (2 answered + 2 unanswered); 101: 1 within 60 s of 2 answered with
    # a known wait. Together 2 / 6.
    assert total.answered_within_target == 2
    assert total.service_level == 33.3
    assert total.asa == 40.0  # (10 + 30 + 30 + 90) / 4 known waits
    assert total.aht == 88.0  # (100 + 200 + 50 + 70 + 20) / 5
    assert (total.longest_wait, total.wait_unknown) == (90, 1)
    assert total.abandon_rate == 25.0  # 2 / 8
    # The rules differ: the strictest target and goal are shown, the formula is "mixed".
    assert (total.target_seconds, total.target_percent) == (60, 80)
    assert (total.formula, total.short_abandons_excluded) == (FORMULA_MIXED, True)


def test_the_queues_own_figures_are_those_of_a_report_of_each():
    result = report(interval="15min")
    alone = queue_report(
        CALLS, rules=RULES, date_from=DAY, date_to=DAY, interval="15min", zone=ZONE
    )

    assert result.figures == alone.figures
    assert result.totals == alone.totals
    assert [f.offered for f in result.selection[40:46]] == [3, 2, 0, 0, 2, 1]
    assert sum(f.offered for f in result.selection) == result.selection_total.offered


def test_a_selection_with_the_same_rules_keeps_them():
    rules = {100: KpiRules(formula="removed"), 101: KpiRules(formula="removed")}

    total = report(rules=rules).selection_total

    assert (total.formula, total.target_seconds, total.target_percent) == ("removed", 20, 80)
    assert total.short_abandons_excluded is False


def test_a_selection_without_calls_has_zeros_and_no_ratios():
    total = report(calls=[]).selection_total

    assert (total.offered, total.service_level, total.asa, total.longest_wait) == (
        0,
        None,
        None,
        None,
    )
    assert report(rules={}).selection_total.target_percent == 80  # no queues: the defaults


def test_calls_by_hour_of_day_add_up_and_the_repeated_hour_is_one_hour():
    calls = [
        fact(100, 8, "answered", 5, 60, "201", day=AUTUMN),  # 02:00 summer time
        fact(100, 12, "abandoned", 30, day=AUTUMN),  # 02:00 winter time
        fact(100, 99, "answered", 5, 60, "201", day=AUTUMN),  # 23:45
        fact(100, 40, "answered", 5, 60, "201", day=AUTUMN + timedelta(days=1)),  # 10:00
    ]

    result = selection_report(
        [calls],
        rules={100: KpiRules()},
        date_from=AUTUMN,
        date_to=AUTUMN + timedelta(days=1),
        interval="day",
        zone=ZONE,
    )

    assert len(result.by_hour) == 24
    assert [(h, f.offered) for h, f in enumerate(result.by_hour) if f.offered] == [
        (2, 2),
        (10, 1),
        (23, 1),
    ]
    assert result.by_hour[2].abandoned == 1


def test_without_detail_it_leaves_hours_and_agents_out():
    result = report(detail=False)

    assert (result.by_hour, result.agents) == ([], [])
    assert result.selection_total.offered == 8


def test_agents_of_the_selection_are_counted():
    agents = report().agents

    assert [(a.agent, a.calls, a.talk_seconds) for a in agents] == [
        ("201", 2, 150),
        ("203", 2, 90),
        ("202", 1, 200),
    ]
    assert agents[0].calls_by_queue == {100: 1, 101: 1}


# --- any calls: pieces, selections of one queue -----------------------------------------------

facts = st.builds(
    CallFact,
    queue=st.sampled_from([100, 101, 102]),
    day=st.sampled_from([DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]),
    slot=st.integers(0, 95),
    outcome=st.sampled_from(OUTCOMES),
    wait=st.one_of(st.none(), st.integers(0, 200)),
    talk=st.integers(0, 600),
    agent=st.sampled_from(["201", "202", "203"]),
)
rules_of_a_queue = st.builds(
    KpiRules,
    target_seconds=st.integers(1, 120),
    target_percent=st.integers(1, 100),
    formula=st.sampled_from(FORMULAS),
    short_abandon_seconds=st.integers(0, 10),
    exclude_short_abandons=st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(
    calls=st.lists(facts, max_size=60),
    rules=st.fixed_dictionaries({100: rules_of_a_queue, 101: rules_of_a_queue}),
    cut=st.integers(0, 60),
    interval=st.sampled_from(["15min", "hour", "day", "week"]),
)
def test_counting_in_pieces_equals_counting_at_once(calls, rules, cut, interval):
    def run(chunks):
        return selection_report(
            chunks,
            rules=rules,
            date_from=DAY,
            date_to=DAY + timedelta(days=2),
            interval=interval,
            zone=ZONE,
        )

    assert run([calls[:cut], calls[cut:]]) == run([calls])


@settings(max_examples=60, deadline=None)
@given(calls=st.lists(facts, max_size=60), rule=rules_of_a_queue)
def test_a_selection_of_one_queue_has_that_queues_figures(calls, rule):
    result = selection_report(
        [calls], rules={101: rule}, date_from=DAY, date_to=DAY, interval="hour", zone=ZONE
    )

    assert result.selection_total == dataclasses.replace(result.totals[101], queue=SELECTION)
    for mine, queues in zip(result.selection, result.figures[101], strict=True):
        assert mine == dataclasses.replace(queues, queue=SELECTION)


@settings(max_examples=60, deadline=None)
@given(calls=st.lists(facts, max_size=60), cut=st.integers(0, 60))
def test_agents_merged_from_pieces_equal_agents_of_the_whole(calls, cut):
    merged = agent_figures_merge([agent_report(calls[:cut]), agent_report(calls[cut:])])

    assert merged == agent_report(calls)


def test_without_queue_periods_each_queue_keeps_its_totals_only():
    full = report(interval="15min")
    slim = report(interval="15min", queue_periods=False)

    assert slim.figures == {}
    assert slim.totals == full.totals
    assert (slim.selection, slim.selection_total) == (full.selection, full.selection_total)

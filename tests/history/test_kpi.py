"""The KPI engine on a hand-computed day: every figure, under each service-level formula, with
and without short abandons; quarter hours, DST days, agents, and "today" equal to a report."""

from __future__ import annotations

from datetime import date

import pytest

from wallboard.history.kpi import (
    CallFact,
    KpiRules,
    agent_report,
    queue_report,
    today_figures,
)

from .conftest import ZONE

DAY = date(2026, 11, 20)
AUTUMN = date(2026, 10, 25)


def fact(slot, outcome, wait, talk=None, agent="", queue=100, day=DAY) -> CallFact:
    return CallFact(queue, day, slot, outcome, wait, talk, agent)


# Queue 100's day, by hand. T = 20 s, short abandon = within 5 s.
CALLS = [
    fact(40, "answered", 10, 100, "201"),  # within T
    fact(40, "answered", 20, 200, "202"),  # exactly T: within
    fact(41, "answered", 45, 60, "201"),  # too late
    fact(41, "answered", None, 40, "203"),  # wait unknown: out of the service level
    fact(41, "abandoned", 2),  # a short abandon (within T too)
    fact(42, "abandoned", 40),
    fact(42, "abandoned", 15),  # gave up within T
    fact(42, "abandoned", None),  # gave up, wait unknown
    fact(43, "voicemail", 480),
    fact(43, "timeout", 480),
    fact(44, "busy", 0),
    fact(44, "answered", 5, 30, "201", queue=101),  # another queue
    fact(44, "answered", 5, 30, "201", day=date(2026, 11, 21)),  # another day
]


def day_totals(rules: KpiRules, calls=CALLS):
    report = queue_report(
        calls, rules={100: rules}, date_from=DAY, date_to=DAY, interval="day", zone=ZONE
    )
    return report.totals[100]


def test_it_counts_every_figure_of_the_day():
    figures = day_totals(KpiRules())

    assert (figures.offered, figures.answered, figures.unanswered) == (11, 4, 7)
    assert (figures.abandoned, figures.short_abandoned) == (4, 1)
    assert (figures.voicemail, figures.timed_out, figures.busy) == (1, 1, 1)
    assert figures.answered_within_target == 2
    assert figures.asa == 25.0  # (10 + 20 + 45) / 3: the unknown wait is left out
    assert figures.aht == 100.0  # (100 + 200 + 60 + 40) / 4
    assert figures.talk_seconds == 400
    assert figures.longest_wait == 480
    assert figures.abandon_rate == 36.4  # 4 / 11
    assert figures.wait_unknown == 2
    # The default formula, as the boards count today: 2 / (3 answered with a wait + 7).
    assert (figures.formula, figures.service_level) == ("offered", 20.0)
    assert figures.service_level_met is False
    assert (figures.target_seconds, figures.target_percent) == (20, 80)


@pytest.mark.parametrize(
    ("formula", "excluded", "level", "offered", "abandoned", "abandon_rate"),
    [
        ("answered", False, 66.7, 11, 4, 36.4),  # 2 / 3
        ("offered", False, 20.0, 11, 4, 36.4),  # 2 / (3 + 7)
        ("removed", False, 44.4, 11, 4, 36.4),  # (2 + 1 + 1 short) / (3 + 7 - 1 unknown)
        ("answered", True, 66.7, 10, 3, 30.0),  # 2 / 3
        ("offered", True, 22.2, 10, 3, 30.0),  # 2 / (3 + 6)
        ("removed", True, 37.5, 10, 3, 30.0),  # (2 + 1) / (3 + 6 - 1)
    ],
)
def test_each_formula_with_and_without_short_abandons(
    formula, excluded, level, offered, abandoned, abandon_rate
):
    figures = day_totals(KpiRules(formula=formula, exclude_short_abandons=excluded))

    assert figures.service_level == level
    assert (figures.offered, figures.abandoned, figures.abandon_rate) == (
        offered,
        abandoned,
        abandon_rate,
    )
    assert figures.short_abandoned == 1  # reported either way
    assert figures.short_abandons_excluded is excluded


def test_the_target_and_the_short_abandon_limit_are_the_queues_own():
    figures = day_totals(
        KpiRules(target_seconds=45, target_percent=60, formula="answered", short_abandon_seconds=1)
    )

    assert figures.answered_within_target == 3
    assert (figures.service_level, figures.service_level_met) == (100.0, True)
    assert figures.short_abandoned == 0  # the 2 s abandon is not within 1 s


def test_a_queue_without_calls_has_zeros_and_no_ratios():
    figures = day_totals(KpiRules(), calls=[])

    assert (figures.offered, figures.answered, figures.talk_seconds) == (0, 0, 0)
    assert figures.service_level is None
    assert figures.service_level_met is None
    assert (figures.asa, figures.aht, figures.longest_wait, figures.abandon_rate) == (
        None,
        None,
        None,
        None,
    )


def test_quarter_hours_hold_their_own_calls_and_add_up_to_the_day():
    report = queue_report(
        CALLS, rules={100: KpiRules()}, date_from=DAY, date_to=DAY, interval="15min", zone=ZONE
    )

    figures = report.figures[100]
    assert len(report.periods) == len(figures) == 96
    assert report.periods[40].start.strftime("%H:%M") == "10:00"
    assert [figures[slot].offered for slot in (39, 40, 41, 42, 43, 44)] == [0, 2, 3, 3, 2, 1]
    assert figures[40].service_level == 100.0  # both answered within T
    assert figures[41].service_level == 0.0  # 45 s late; the short abandon did not make it
    assert sum(f.offered for f in figures) == report.totals[100].offered == 11
    assert report.totals[100] == day_totals(KpiRules())


def test_hours_group_four_quarters():
    report = queue_report(
        CALLS, rules={100: KpiRules()}, date_from=DAY, date_to=DAY, interval="hour", zone=ZONE
    )

    assert report.figures[100][10].offered == 10  # slots 40-43
    assert report.figures[100][11].offered == 1  # the busy call at 11:00


def test_the_repeated_hour_of_the_autumn_change_is_reported_twice():
    calls = [
        fact(8, "answered", 5, 60, "201", day=AUTUMN),  # 02:00-02:15 summer time
        fact(12, "abandoned", 30, day=AUTUMN),  # 02:00-02:15 winter time, an hour later
        fact(99, "answered", 5, 60, "201", day=AUTUMN),  # 23:45
    ]

    quarters = queue_report(
        calls,
        rules={100: KpiRules()},
        date_from=AUTUMN,
        date_to=AUTUMN,
        interval="15min",
        zone=ZONE,
    )
    hours = queue_report(
        calls, rules={100: KpiRules()}, date_from=AUTUMN, date_to=AUTUMN, interval="hour", zone=ZONE
    )

    assert len(quarters.periods) == 100
    summer, winter = quarters.periods[8], quarters.periods[12]
    assert summer.start.strftime("%H:%M") == winter.start.strftime("%H:%M") == "02:00"
    assert (summer.start.utcoffset().seconds, winter.start.utcoffset().seconds) == (7200, 3600)
    assert (quarters.figures[100][8].answered, quarters.figures[100][12].abandoned) == (1, 1)
    assert quarters.figures[100][99].answered == 1
    assert len(hours.periods) == 25
    assert [hours.figures[100][index].offered for index in (2, 3, 24)] == [1, 1, 1]


def test_a_week_that_holds_a_dst_day_counts_it_and_says_its_length():
    calls = [fact(12, "answered", 5, 60, "201", day=AUTUMN), fact(40, "busy", 0)]

    report = queue_report(
        calls,
        rules={100: KpiRules()},
        date_from=date(2026, 10, 19),
        date_to=date(2026, 11, 22),
        interval="week",
        zone=ZONE,
    )

    assert [p.hours for p in report.periods] == [169, 168, 168, 168, 168]
    assert [f.offered for f in report.figures[100]] == [1, 0, 0, 0, 1]


def test_today_so_far_is_the_same_aggregation_as_a_report():
    rules = {100: KpiRules(formula="removed"), 101: KpiRules()}

    today = today_figures(CALLS, rules=rules, today=DAY, zone=ZONE)

    report = queue_report(
        CALLS, rules=rules, date_from=DAY, date_to=DAY, interval="15min", zone=ZONE
    )
    assert today == report.totals
    assert today[101].answered == 1
    assert today[100].service_level == 44.4


def test_agents_get_their_calls_and_talk_time():
    agents = agent_report(CALLS)

    assert [(a.agent, a.calls, a.talk_seconds, a.aht, a.longest_talk) for a in agents] == [
        ("201", 4, 220, 55.0, 100),  # 100 + 60 in 100, 30 in 101, 30 the next day
        ("202", 1, 200, 200.0, 200),
        ("203", 1, 40, 40.0, 40),
    ]
    assert agents[0].calls_by_queue == {100: 3, 101: 1}


def test_unknown_rules_are_refused():
    with pytest.raises(ValueError, match="formula"):
        KpiRules(formula="made-up")

"""Reads for pages and the API over stored rows: queue figures with each queue's own rules,
agents, paged records, missed callers, the staffing hint, and questions refused in plain words."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from wallboard.history import selectors, services
from wallboard.history.intervals import QueryInvalid, RangeInvalid
from wallboard.history.models import QueueKpiSettings

from .conftest import ZONE, cdr_row, local

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 20)
KNOWN = {100, 101}


def stored(rows: list[dict]) -> None:
    services.call_records_upsert(rows=rows, known=KNOWN, zone=ZONE, stored_at=timezone.now())


def abandoned(number: int, when: str, *, waited: int, queue: str = "100", **fields) -> dict:
    return cdr_row(
        number,
        when,
        received=queue,
        destination=queue,
        destination_name=None,
        application="queue",
        status="missed",
        duration="0",
        complete_duration=str(waited),
        **fields,
    )


def answered(number: int, when: str, *, waited: int, talk: int, **fields) -> dict:
    return cdr_row(number, when, duration=str(talk), complete_duration=str(waited + talk), **fields)


@pytest.fixture
def day_of_calls():
    stored(
        [
            answered(1, "2026-11-20 10:01:00", waited=10, talk=100),
            answered(
                2,
                "2026-11-20 10:02:00",
                waited=30,
                talk=200,
                destination="202",
                destination_name="Peter Hruby",
            ),
            abandoned(3, "2026-11-20 10:03:00", waited=3),
            abandoned(4, "2026-11-20 10:20:00", waited=50),
            answered(5, "2026-11-20 10:21:00", waited=5, talk=50, received="101"),
            cdr_row(6, "2026-11-20 10:22:00", type="outgoing", caller="201", received="0905"),
            answered(7, "2026-11-21 09:00:00", waited=5, talk=50),  # the next day
        ]
    )


def test_queue_figures_use_each_queues_rules(day_of_calls):
    QueueKpiSettings.objects.create(
        queue=100,
        service_level_target_seconds=30,
        service_level_formula="answered",
        exclude_short_abandons=True,
    )

    report = selectors.queue_figures(
        queues=[100, 101], date_from=DAY, date_to=DAY, interval="15min"
    )

    first, second = report.totals[100], report.totals[101]
    assert (first.offered, first.answered, first.abandoned, first.short_abandoned) == (3, 2, 1, 1)
    assert (first.service_level, first.target_seconds) == (100.0, 30)  # 2 of 2 within 30 s
    assert (first.asa, first.aht, first.longest_wait) == (20.0, 150.0, 50)
    assert [f.offered for f in report.figures[100][40:42]] == [2, 1]  # 10:00, 10:15
    # Queue 101 has the defaults: within 20 s over answered + unanswered.
    assert (second.offered, second.service_level, second.target_seconds) == (1, 100.0, 20)


def test_today_figures_are_the_days_figures(day_of_calls):
    today = selectors.queue_figures_today(queues=[100], now=local("2026-11-20 18:00"))
    report = selectors.queue_figures(queues=[100], date_from=DAY, date_to=DAY, interval="hour")

    assert today[100] == report.totals[100]
    assert today[100].offered == 4  # the short abandon counts: the default rules keep it


def test_questions_that_cannot_be_answered_are_refused(day_of_calls):
    with pytest.raises(RangeInvalid, match="too long"):
        selectors.queue_figures(
            queues=[100], date_from=DAY, date_to=DAY + timedelta(days=31), interval="15min"
        )
    with pytest.raises(RangeInvalid, match="before it starts"):
        selectors.agent_figures(date_from=DAY, date_to=DAY - timedelta(days=1))
    with pytest.raises(QueryInvalid, match="Unknown outcome"):
        selectors.call_records_page(date_from=DAY, date_to=DAY, outcome="lost")
    with pytest.raises(QueryInvalid, match="Pages start at 1"):
        selectors.call_records_page(date_from=DAY, date_to=DAY, page=0)


def test_a_report_of_too_many_figures_is_refused(day_of_calls):
    # 31 days of quarter hours (2,976 periods) for 34 queues: 101,184 sets of figures.
    with pytest.raises(QueryInvalid, match="at most 100,000"):
        selectors.queue_figures(
            queues=range(100, 134),
            date_from=date(2026, 12, 1),
            date_to=date(2026, 12, 31),
            interval="15min",
        )


def test_the_queues_with_calls_in_a_range_come_from_the_records(day_of_calls):
    assert selectors.queues_with_calls(date_from=DAY, date_to=DAY) == [100, 101]
    assert selectors.queues_with_calls(
        date_from=DAY + timedelta(days=1), date_to=DAY + timedelta(days=9)
    ) == [100]
    assert selectors.queues_with_calls(date_from=date(2026, 1, 1), date_to=date(2026, 1, 2)) == []


def test_agents_are_listed_with_their_names_and_talk_time(day_of_calls):
    agents = selectors.agent_figures(date_from=DAY, date_to=DAY, queues=[100, 101])

    assert [(a.agent, a.name, a.calls, a.talk_seconds) for a in agents] == [
        ("201", "Jana Novakova", 2, 150),
        ("202", "Peter Hruby", 1, 200),
    ]
    assert selectors.agent_figures(date_from=DAY, date_to=DAY, queues=[101])[0].calls == 1


def test_records_are_paged_newest_first_and_filtered(day_of_calls):
    page = selectors.call_records_page(date_from=DAY, date_to=DAY, page_size=2, page=2)

    assert (page.total, page.pages) == (6, 3)
    assert [r.id for r in page.records] == [4, 3]  # 10:22, 10:21 | 10:20, 10:03 | ...

    def ids(**filters) -> list[int]:
        found = selectors.call_records_page(date_from=DAY, date_to=DAY, **filters)
        return [record.id for record in found.records]

    assert ids(queues=[100]) == [4, 3, 2, 1]
    assert ids(agent="201") == [5, 1]
    assert ids(outcome="abandoned") == [4, 3]
    assert ids(caller="903123") == [5, 4, 3, 2, 1]
    assert ids(queues=[101], outcome="answered") == [5]


def test_missed_callers_are_those_not_served_since():
    stored(
        [
            abandoned(1, "2026-11-20 10:00:00", waited=40, caller="00421903111111"),
            abandoned(2, "2026-11-20 10:05:00", waited=20, caller="00421903111111"),
            # Gave up, then got through in another queue.
            abandoned(3, "2026-11-20 10:10:00", waited=30, caller="00421903222222"),
            answered(4, "2026-11-20 10:20:00", waited=9, talk=60, caller="00421903222222"),
            # Gave up; an agent called back and was answered (dialled nationally).
            abandoned(5, "2026-11-20 10:15:00", waited=30, caller="00421903333333"),
            cdr_row(6, "2026-11-20 10:30:00", type="outgoing", caller="201",
                    received="0903333333", destination="0903333333", application="call"),
            # Timed out; the call back was not answered.
            cdr_row(7, "2026-11-20 10:40:00", caller="00421903444444", application="hangup",
                    status="missed", duration="0", complete_duration="480", destination="100"),
            cdr_row(8, "2026-11-20 10:50:00", type="outgoing", caller="201", status="missed",
                    received="0903444444", destination="0903444444", application="call"),
            # Served in the morning, gave up at 11:00 (an earlier answer does not count).
            answered(9, "2026-11-20 09:00:00", waited=5, talk=60, caller="00421903555555"),
            abandoned(10, "2026-11-20 11:00:00", waited=15, caller="00421903555555",
                      queue="101"),
            abandoned(11, "2026-11-20 11:05:00", waited=15, caller="202"),  # a colleague
            abandoned(12, "2026-11-19 16:00:00", waited=15, caller="00421903666666"),  # yesterday
        ]
    )  # fmt: skip

    missed = selectors.missed_callers(now=local("2026-11-20 12:00"))

    assert [(m.caller, m.queue, m.outcome, m.wait, m.attempts) for m in missed] == [
        ("00421903555555", 101, "abandoned", 15, 1),
        ("00421903444444", 100, "timeout", 480, 1),
        ("00421903111111", 100, "abandoned", 20, 2),
    ]
    assert missed[2].when.isoformat() == "2026-11-20T10:05:00+01:00"  # PBX time
    assert missed[2].first_when == local("2026-11-20 10:00")
    only_101 = selectors.missed_callers(queues=[101], now=local("2026-11-20 12:00"))
    assert [m.caller for m in only_101] == ["00421903555555"]


def test_the_staffing_hint_follows_the_last_half_hour_and_todays_aht():
    # The morning: AHT 180 s. The last half hour: 100 calls (200 an hour) = 10 Erlangs.
    rows = [answered(n, f"2026-11-20 08:{n:02d}:00", waited=5, talk=180) for n in range(1, 41)] + [
        answered(100 + n, f"2026-11-20 10:{(n % 30) + 30:02d}:{n % 60:02d}", waited=5, talk=180)
        for n in range(100)
    ]
    stored(rows)
    QueueKpiSettings.objects.create(queue=100, service_level_target_percent=80)

    hint = selectors.staffing_hint_get(queue=100, now=local("2026-11-20 11:00"))

    assert hint is not None
    assert (hint.arrivals_per_hour, hint.aht, hint.agents, hint.service_level) == (
        200.0,
        180.0,
        14,
        88.8,
    )
    assert selectors.staffing_hint_get(queue=101, now=local("2026-11-20 11:00")) is None

"""Reading the CDR into the history against the real simulator (calls scripted through its API)
and, for shapes it never writes, the stand-in PBX at the HTTP seam; real Redis (the shared
budget, the live queue list) and the real database. The clock is injected (``now``)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import pytest

from pbxapi import errors as pbx
from wallboard.history import services
from wallboard.history.models import CallRecord, CdrDayCursor
from wallboard.live.pbx import pbx_budget

from .conftest import ZONE, cdr_row, local, utc

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 20)
NEXT = date(2026, 11, 21)


def sim_now(sim) -> datetime:
    return datetime.fromtimestamp(sim.centre.now(), ZONE)


def cdr_requests(sim, since: int = 0) -> int:
    return sum(1 for entry in list(sim.requests_log)[since:] if entry.path.startswith("/api/cdr"))


def answered_call(sim, queue: int, extension: int, *, waited: int, talk: int) -> None:
    sim.centre.add_waiting_caller(queue, wait_time=waited)
    sim.centre.start_call(queue, extension)
    sim.centre.advance(talk, live=False)
    sim.centre.end_call(extension)


def abandoned_call(sim, queue: int, *, waited: int) -> None:
    sim.centre.abandon_caller(sim.centre.add_waiting_caller(queue, wait_time=waited))


@pytest.fixture
def sim(simulator_factory, queues_known):
    """The simulator on 20 November 2026 at 10:00, its queues in the live cache."""
    started = simulator_factory(start_time=local("2026-11-20 10:00").timestamp())
    queues_known(started.centre.queue_numbers())
    return started


def test_it_stores_todays_calls_and_each_later_run_costs_one_request(sim):
    queue = sim.centre.queue_numbers()[0]
    agent = sim.centre.members(queue)[0]
    answered_call(sim, queue, agent, waited=12, talk=60)
    abandoned_call(sim, queue, waited=2)
    abandoned_call(sim, queue, waited=40)

    first = services.cdr_poll_run(now=sim_now(sim))

    # Yesterday is read once (nothing there, and past its settle time) and today's three rows.
    assert [(d.day, d.requests, d.rows, d.settled) for d in first.days] == [
        (DAY - timedelta(days=1), 1, 0, True),
        (DAY, 1, 3, False),
    ]
    records = list(CallRecord.objects.order_by("id"))
    assert [(r.queue, r.outcome, r.wait, r.talk, r.agent) for r in records] == [
        (queue, "answered", 12, 60, str(agent)),
        (queue, "abandoned", 2, None, ""),
        (queue, "abandoned", 40, None, ""),
    ]
    assert {r.day for r in records} == {DAY}

    since = len(sim.requests_log)
    again = services.cdr_poll_run(now=sim_now(sim))  # nothing new: the last row read again

    assert cdr_requests(sim, since) == 1
    assert [(d.day, d.rows, d.stored) for d in again.days] == [(DAY, 0, 0)]
    assert CallRecord.objects.count() == 3  # a row read twice is one row

    abandoned_call(sim, queue, waited=7)
    since = len(sim.requests_log)
    services.cdr_poll_run(now=sim_now(sim))

    assert cdr_requests(sim, since) == 1
    assert CallRecord.objects.count() == 4
    assert CdrDayCursor.objects.get(day=DAY).rows == 4


def test_a_day_of_3001_calls_is_paged_and_then_read_from_its_end(sim):
    queue = sim.centre.queue_numbers()[0]
    for _ in range(3001):
        abandoned_call(sim, queue, waited=30)
    services.cdr_day_read(day=DAY - timedelta(days=1), now=sim_now(sim), known=set())
    since = len(sim.requests_log)

    report = services.cdr_poll_run(now=sim_now(sim))

    assert cdr_requests(sim, since) == 2  # 3000 rows, then 2 (the last one read again)
    assert [(d.day, d.requests, d.rows) for d in report.days] == [(DAY, 2, 3001)]
    assert CallRecord.objects.filter(day=DAY, queue=queue).count() == 3001

    abandoned_call(sim, queue, waited=30)
    since = len(sim.requests_log)
    services.cdr_poll_run(now=sim_now(sim))

    assert cdr_requests(sim, since) == 1
    assert CallRecord.objects.count() == 3002


def test_a_call_that_starts_before_midnight_is_stored_under_its_day_once_it_ends(
    simulator_factory, queues_known
):
    sim = simulator_factory(start_time=local("2026-11-20 23:57").timestamp())
    queues_known(sim.centre.queue_numbers())
    queue = sim.centre.queue_numbers()[0]
    agent = sim.centre.members(queue)[0]
    sim.centre.add_waiting_caller(queue, wait_time=20)  # in the queue since 23:56:40
    sim.centre.start_call(queue, agent)  # answered at 23:57:00
    services.cdr_poll_run(now=sim_now(sim))
    sim.centre.advance(240, live=False)  # 00:01 on the 21st
    sim.centre.end_call(agent)
    abandoned_call(sim, queue, waited=10)

    after_midnight = services.cdr_poll_run(now=sim_now(sim))

    assert [(d.day, d.rows, d.settled) for d in after_midnight.days] == [
        (DAY, 1, False),  # yesterday's late call, read from where yesterday stopped
        (NEXT, 1, False),
    ]
    late = CallRecord.objects.get(outcome="answered")
    assert late.when == local("2026-11-20 23:56:40")
    assert (late.day, late.slot, late.wait, late.talk) == (DAY, 95, 20, 240)
    assert CallRecord.objects.get(outcome="abandoned").day == NEXT

    # Two hours after midnight yesterday is read once more from the start, and settles.
    since = len(sim.requests_log)
    settling = services.cdr_poll_run(now=local("2026-11-21 02:00:01"))

    assert [(d.day, d.requests, d.rows, d.settled) for d in settling.days] == [
        (DAY, 1, 1, True),
        (NEXT, 1, 0, False),
    ]
    assert cdr_requests(sim, since) == 2

    since = len(sim.requests_log)
    later = services.cdr_poll_run(now=local("2026-11-21 02:01"))

    assert [d.day for d in later.days] == [NEXT]  # a settled day is not asked for again
    assert cdr_requests(sim, since) == 1
    assert CallRecord.objects.count() == 2


def test_a_run_that_fails_half_way_resumes_where_it_stopped(sim):
    queue = sim.centre.queue_numbers()[0]
    for _ in range(3001):
        abandoned_call(sim, queue, waited=30)
    services.cdr_day_read(day=DAY - timedelta(days=1), now=sim_now(sim), known=set())
    # The first page is stored, then the run stops (as when its worker is killed).
    services.cdr_day_read(day=DAY, now=sim_now(sim), known={queue}, max_requests=1)
    assert CdrDayCursor.objects.get(day=DAY).rows == 3000
    sim.centre.set_fault("html500")

    with pytest.raises(pbx.ServerError):
        services.cdr_poll_run(now=sim_now(sim))

    assert CdrDayCursor.objects.get(day=DAY).rows == 3000
    sim.centre.set_fault(None)
    since = len(sim.requests_log)
    report = services.cdr_poll_run(now=sim_now(sim))

    assert cdr_requests(sim, since) == 1  # offset 2999: the last row stored, and one more
    assert [(d.day, d.rows) for d in report.days] == [(DAY, 1)]
    assert CallRecord.objects.count() == 3001


def test_a_budget_refusal_leaves_the_work_to_the_next_run(sim, settings):
    settings.PBX_BUDGET_WINDOW = 30.0  # the window stays full however slow the machine is
    abandoned_call(sim, sim.centre.queue_numbers()[0], waited=30)
    budget = pbx_budget()
    with pytest.raises(pbx.BudgetExhausted):  # the whole window taken by agent actions
        while True:
            budget.acquire(priority="action")
    since = len(sim.requests_log)

    report = services.cdr_poll_run(now=sim_now(sim))

    assert report.deferred is True
    assert cdr_requests(sim, since) == 0
    assert CallRecord.objects.count() == 0


def test_a_blocked_pbx_is_left_to_propagate(sim):
    pbx_budget().report_blocked(3.0)

    with pytest.raises(pbx.Blocked):
        services.cdr_poll_run(now=sim_now(sim))


# --- shapes only the stand-in PBX writes --------------------------------------------------


def five_rows() -> list[dict]:
    return [cdr_row(n, f"2026-11-20 10:0{n}:00") for n in range(1, 6)]


def test_rows_that_shrank_are_read_again_from_the_start(cdr_pbx, queues_known):
    queues_known([100])
    cdr_pbx.days[DAY] = five_rows()
    services.cdr_day_read(day=DAY, now=local("2026-11-20 11:00"), known={100})
    del cdr_pbx.days[DAY][1:3]
    since = len(cdr_pbx.requests)

    read = services.cdr_day_read(day=DAY, now=local("2026-11-20 11:01"), known={100})

    assert cdr_pbx.offsets(since) == [4, 0]
    assert (read.restarts, read.rows) == (1, 3)
    assert CdrDayCursor.objects.get(day=DAY).rows == 3
    assert CallRecord.objects.count() == 5  # what the PBX no longer lists stays in history


def test_rows_that_shifted_are_read_again_from_the_start(cdr_pbx):
    cdr_pbx.days[DAY] = five_rows()
    services.cdr_day_read(day=DAY, now=local("2026-11-20 11:00"), known={100})
    cdr_pbx.days[DAY].insert(0, cdr_row(9, "2026-11-20 09:59:00"))
    since = len(cdr_pbx.requests)

    read = services.cdr_day_read(day=DAY, now=local("2026-11-20 11:01"), known={100})

    assert cdr_pbx.offsets(since) == [4, 0]
    assert (read.restarts, read.rows) == (1, 6)
    assert CallRecord.objects.count() == 6


def test_rows_that_keep_moving_are_a_protocol_error(cdr_pbx):
    cdr_pbx.days[DAY] = [cdr_row(n, "2026-11-20 10:00:00") for n in range(1, 3006)]
    services.cdr_day_read(day=DAY, now=local("2026-11-20 11:00"), known={100})
    fresh = iter(range(10_000, 20_000))

    def insert_before_each_answer(_number: int) -> None:
        cdr_pbx.days[DAY].insert(0, cdr_row(next(fresh), "2026-11-20 09:00:00"))

    cdr_pbx.before_answer = insert_before_each_answer

    with pytest.raises(pbx.ProtocolError, match="keep moving"):
        services.cdr_day_read(day=DAY, now=local("2026-11-20 11:01"), known={100})

    cursor = CdrDayCursor.objects.get(day=DAY)
    assert cursor.rows == 3000  # the pass that started at 0 got one full page in
    assert CallRecord.objects.filter(id__gte=10_000).count() == 2


def test_unreadable_rows_are_skipped_with_one_warning_and_keep_their_place(cdr_pbx, caplog):
    cdr_pbx.artefacts = True  # every answer ends with a stray ""
    cdr_pbx.days[DAY] = [
        cdr_row(1, "2026-11-20 10:00:00"),
        {"id": "2", "type": "incoming"},  # no when
        cdr_row(3, "2026-11-20 10:02:00", duration="a minute"),
        cdr_row(4, "2026-11-20 10:03:00"),
        cdr_row(4, "2026-11-20 10:03:00", status="missed"),  # one id listed twice
    ]
    caplog.set_level(logging.WARNING, logger="wallboard.history.services")

    read = services.cdr_day_read(day=DAY, now=local("2026-11-20 11:00"), known={100})

    assert (read.rows, read.stored, read.skipped) == (5, 2, 2)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Skipped 2 unreadable CDR row(s)" in warnings[0].getMessage()
    assert CallRecord.objects.get(id=4).outcome == "abandoned"  # the later listing wins

    cdr_pbx.days[DAY].append(cdr_row(6, "2026-11-20 10:05:00"))
    since = len(cdr_pbx.requests)
    read = services.cdr_day_read(day=DAY, now=local("2026-11-20 11:01"), known={100})

    assert cdr_pbx.offsets(since) == [4]  # the bad rows counted as positions, "" did not
    assert (read.restarts, read.rows, read.stored) == (0, 1, 1)


def test_a_row_that_changed_is_updated_when_its_day_settles(cdr_pbx):
    recording = "q-100-00421903123456-20261120-100100-1.mp3"
    cdr_pbx.days[DAY] = [cdr_row(1, "2026-11-20 10:01:00", recording_file=recording)]
    services.cdr_poll_run(now=local("2026-11-20 11:00"))
    cdr_pbx.days[DAY][0]["recording_file"] = ""  # the recording was deleted

    services.cdr_poll_run(now=local("2026-11-21 01:00"))  # before the settle time

    assert CallRecord.objects.get(id=1).recording_file == recording
    services.cdr_poll_run(now=local("2026-11-21 02:30"))

    assert CallRecord.objects.get(id=1).recording_file == ""
    assert CdrDayCursor.objects.get(day=DAY).settled_at == local("2026-11-21 02:30")


def test_calls_of_a_queue_that_appears_later_get_it_and_keep_it(cdr_pbx, queues_known):
    cdr_pbx.days[DAY] = [
        cdr_row(1, "2026-11-20 10:00:00", received="102"),
        cdr_row(2, "2026-11-20 10:01:00", received="201", type="outgoing"),
    ]
    queues_known([100])
    services.cdr_poll_run(now=local("2026-11-20 11:00"))
    assert CallRecord.objects.get(id=1).queue is None

    queues_known([100, 102])
    report = services.cdr_poll_run(now=local("2026-11-20 11:01"))

    assert report.attributed == 1
    assert CallRecord.objects.get(id=1).queue == 102
    assert CallRecord.objects.get(id=2).queue is None  # outgoing: never a queue call

    # The queue leaves the PBX's list; reading the day again does not take the calls from it.
    queues_known([100])
    services.cdr_poll_run(now=local("2026-11-21 03:00"))
    assert CdrDayCursor.objects.get(day=DAY).settled_at is not None
    assert CallRecord.objects.get(id=1).queue == 102


def test_records_older_than_the_retention_are_deleted_by_the_purge_not_the_poll(cdr_pbx, settings):
    settings.CDR_RETENTION_DAYS = 2
    for number, day in enumerate((17, 18, 19, 20), start=1):
        cdr_pbx.days[date(2026, 11, day)] = [cdr_row(number, f"2026-11-{day} 10:00:00")]
        services.cdr_day_read(day=date(2026, 11, day), now=local("2026-11-20 11:00"), known={100})
    services.cdr_poll_run(now=local("2026-11-20 12:00"))
    assert CallRecord.objects.count() == 4  # the poll leaves it to the daily purge

    purged = services.call_records_purge(today=date(2026, 11, 20))

    assert purged == 1  # the 17th; the 18th is two days before the 20th and stays
    assert sorted(CallRecord.objects.values_list("day", flat=True)) == [
        date(2026, 11, 18),
        date(2026, 11, 19),
        date(2026, 11, 20),
    ]
    assert not CdrDayCursor.objects.filter(day=date(2026, 11, 17)).exists()


def test_the_repeated_hour_is_stored_as_two_hours(cdr_pbx):
    autumn = date(2026, 10, 25)
    first = local("2026-10-25 02:30", fold=0)
    second = local("2026-10-25 02:30", fold=1)
    cdr_pbx.days[autumn] = [
        cdr_row(1, "2026-10-25 02:30:00", unique_id=f"{int(first.timestamp())}.1"),
        cdr_row(2, "2026-10-25 02:30:00", unique_id=f"{int(second.timestamp())}.2"),
    ]

    services.cdr_day_read(day=autumn, now=local("2026-10-26 08:00"), known={100})

    stored = list(CallRecord.objects.order_by("id").values_list("when", "slot"))
    assert stored == [(utc(first), 10), (utc(second), 14)]

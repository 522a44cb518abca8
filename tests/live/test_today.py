"""Today's figures on the boards: the call history publishes them (``services.kpi_publish``),
live keeps the publication in Redis and shows it in every snapshot it builds. Against real
Redis and snapshots built from the real simulator; the history side (how the figures are made)
is tests/history/test_publish.py."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from wallboard.live import push, selectors, services, store
from wallboard.live.snapshots import KPI_UNKNOWN, queue_today
from wallboard.live.store import SOURCE_QUEUES, source_queue_status

from .helpers import poll_until

ZONE = ZoneInfo("Europe/Bratislava")


def figures(**overrides: Any) -> dict[str, Any]:
    """One queue's TodayFigures as the history publishes them."""
    return {
        "offered_today": 12,
        "answered_today": 10,
        "missed_today": 2,
        "abandoned_today": 1,
        "service_level": 75.0,
        "service_level_met": False,
        "sl_target_seconds": 20,
        "sl_goal_percent": 80,
        "sl_formula": "offered",
        "asa": 14.2,
        "aht": 185.5,
        "abandon_rate": 8.3,
        **overrides,
    }


def staffing(**overrides: Any) -> dict[str, Any]:
    return {
        "needed": 4,
        "capped": False,
        "max_agents": 200,
        "window_seconds": 1800,
        "calls": 24,
        "min_calls": 10,
        "arrivals_per_hour": 48.0,
        "aht": 185.5,
        "traffic": 2.47,
        "target_seconds": 20,
        "target_percent": 80,
        "service_level": 83.1,
        "asa": 9.9,
        **overrides,
    }


def day_end() -> float:
    """The end of today in the PBX's time zone."""
    tomorrow = datetime.now(ZONE).date() + timedelta(days=1)
    return datetime.combine(tomorrow, datetime.min.time(), ZONE).timestamp()


def publish(queues, *, agents=None, hints=None, computed_at=None, valid_until=None) -> int:
    return services.kpi_publish(
        queues=queues,
        staffing=hints if hints is not None else {queue: staffing() for queue in queues},
        agents=agents or {},
        computed_at=time.time() if computed_at is None else computed_at,
        valid_until=day_end() if valid_until is None else valid_until,
    )


@pytest.fixture
def boards(simulator):
    """Every simulated queue's snapshot built once, as the poller's first round makes them."""
    services.source_fetch(SOURCE_QUEUES)
    for queue in simulator.centre.queue_numbers():
        services.source_fetch(source_queue_status(queue))
    return simulator


@pytest.fixture
def pushes(monkeypatch) -> list[dict]:
    """Every snapshot pushed to the boards from now on."""
    sent: list[dict] = []
    real = push.snapshot_publish

    def recording(snapshot):
        sent.append(snapshot)
        real(snapshot)

    monkeypatch.setattr(push, "snapshot_publish", recording)
    return sent


def snapshot(queue: int) -> dict:
    return selectors.snapshot_get(queue=queue)


def member(queue: int, extension: int) -> dict:
    return next(m for m in snapshot(queue)["members"] if m["extension"] == extension)


def test_it_shows_nothing_before_the_first_publication(boards):
    for queue in boards.centre.queue_numbers():
        shown = snapshot(queue)
        assert shown["kpi"] == KPI_UNKNOWN
        assert shown["staffing"] is None
        assert {(m["answered"], m["talk_seconds"]) for m in shown["members"]} == {(None, None)}


def test_a_publication_reaches_every_snapshot_with_each_agents_calls(boards, pushes):
    first, second = boards.centre.queue_numbers()
    agent = boards.centre.members(first)[0]
    idle = boards.centre.members(first)[1]
    computed_at = time.time()

    changed = publish(
        {first: figures(), second: figures(answered_today=0, service_level=None)},
        agents={first: {agent: {"answered": 7, "talk_seconds": 1290}}},
        hints={first: staffing(), second: None},
        computed_at=computed_at,
    )

    assert changed == 2
    assert sorted(s["queue"] for s in pushes) == [first, second]
    shown = snapshot(first)
    computed = datetime.fromtimestamp(computed_at, ZONE).isoformat(timespec="seconds")
    assert shown["kpi"] == {**figures(), "computed_at": computed}
    assert shown["staffing"] == staffing()
    assert (member(first, agent)["answered"], member(first, agent)["talk_seconds"]) == (7, 1290)
    # A member with no call today: zero once published, not unknown.
    assert (member(first, idle)["answered"], member(first, idle)["talk_seconds"]) == (0, 0)
    assert snapshot(second)["kpi"]["answered_today"] == 0
    assert snapshot(second)["staffing"] is None  # no hint for that queue
    assert pushes[0]["version"] == snapshot(pushes[0]["queue"])["version"]


def test_only_the_queues_whose_figures_changed_are_pushed(boards, pushes):
    first, second = boards.centre.queue_numbers()
    agent = boards.centre.members(second)[0]
    publish({first: figures(), second: figures()})
    versions = {queue: snapshot(queue)["version"] for queue in (first, second)}
    pushes.clear()

    # Computed again a minute later, the same figures: the time alone is not news.
    assert publish({first: figures(), second: figures()}, computed_at=time.time() + 60) == 0
    assert pushes == []
    assert {queue: snapshot(queue)["version"] for queue in (first, second)} == versions

    # One more answered call in the second queue, by one of its agents.
    later = time.time() + 120
    changed = publish(
        {first: figures(), second: figures(answered_today=11)},
        agents={second: {agent: {"answered": 1, "talk_seconds": 95}}},
        computed_at=later,
    )
    assert changed == 1
    assert [s["queue"] for s in pushes] == [second]
    assert snapshot(first)["version"] == versions[first]
    assert snapshot(second)["version"] > versions[second]
    assert member(second, agent)["answered"] == 1


def test_a_change_of_the_staffing_hint_alone_is_pushed(boards, pushes):
    first, _second = boards.centre.queue_numbers()
    publish({first: figures()})
    pushes.clear()
    assert publish({first: figures()}, hints={first: staffing(needed=5)}) == 1
    assert snapshot(first)["staffing"]["needed"] == 5


def test_an_older_publication_never_replaces_a_newer_one(boards):
    first, _second = boards.centre.queue_numbers()
    now = time.time()
    publish({first: figures(answered_today=10)}, computed_at=now)
    # A slower publisher that began computing before: its figures are older.
    assert publish({first: figures(answered_today=9)}, computed_at=now - 5) == 0
    assert snapshot(first)["kpi"]["answered_today"] == 10
    assert store.today_get()["computed_at"] == now


def test_a_queue_left_out_of_the_publication_shows_unknown_figures(boards):
    first, second = boards.centre.queue_numbers()
    publish({first: figures(), second: figures()})
    publish({first: figures()})  # the second queue is no longer in the PBX's list, say
    assert snapshot(second)["kpi"] == KPI_UNKNOWN
    assert snapshot(second)["staffing"] is None


def test_after_midnight_the_figures_are_unknown_until_the_new_days_publication(boards, pushes):
    first, _second = boards.centre.queue_numbers()
    evening = datetime.now(ZONE).replace(hour=23, minute=59, second=0, microsecond=0)
    midnight = (evening + timedelta(minutes=1)).timestamp()
    with time_machine.travel(evening, tick=False):
        publish({first: figures()}, computed_at=evening.timestamp(), valid_until=midnight)
        services.snapshots_rebuild(queues=[first])
        assert snapshot(first)["kpi"]["answered_today"] == 10
    pushes.clear()

    # The first rebuild after midnight (any poll of the queue) drops yesterday's figures.
    with time_machine.travel(midnight + 1, tick=False):
        services.snapshots_rebuild(queues=[first])
    assert snapshot(first)["kpi"] == KPI_UNKNOWN
    assert [s["queue"] for s in pushes] == [first]

    # The new day's first publication: zeros, pushed.
    with time_machine.travel(midnight + 30, tick=False):
        changed = publish(
            {first: figures(answered_today=0, offered_today=0, missed_today=0)},
            computed_at=midnight + 30,
            valid_until=midnight + 86400,
        )
    assert changed == 1
    assert snapshot(first)["kpi"]["answered_today"] == 0


def test_the_poll_path_reads_the_publication_from_redis_without_a_query(boards, django_db_blocker):
    """The rebuild after each PBX fetch shows the published figures, and nothing on the way
    touches the database: with it blocked, any query raises."""
    first, _second = boards.centre.queue_numbers()
    publish({first: figures()})
    store.watch_register("test-board", [first], ttl=120)
    boards.centre.add_waiting_caller(first, caller="00421905000077")
    with django_db_blocker.block():
        poll_until(lambda: snapshot(first)["counts"]["waiting"] == 1)
    assert snapshot(first)["kpi"]["answered_today"] == 10


def test_queue_today_reads_one_queue_of_a_publication():
    publication = {
        "computed_at": 1000.0,
        "valid_until": 2000.0,
        "queues": {"100": figures()},
        "staffing": {"100": staffing()},
        "agents": {"100": {"201": {"answered": 3, "talk_seconds": 300}}},
    }
    today = queue_today(publication, queue=100, now=1500.0)
    assert today.kpi["answered_today"] == 10 and today.kpi["computed_at"]
    assert today.agents == {201: {"answered": 3, "talk_seconds": 300}}
    assert queue_today(publication, queue=100, now=2000.0).kpi == KPI_UNKNOWN  # day over
    assert queue_today(publication, queue=101, now=1500.0).agents is None  # not published
    assert queue_today(None, queue=100, now=1500.0).staffing is None

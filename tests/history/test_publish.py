"""The boards' figures come from the KPI engine: what the history publishes to the live boards
(every known queue's figures, staffing hint and agents), when (after every CDR poll, midnight
and PBX failures included, and when a queue's rules change), and that two polls never overlap.
Against real Redis and the stand-in PBX at the HTTP seam."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
import time_machine
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from wallboard.history import selectors, services
from wallboard.history.models import CallRecord, QueueKpiSettings
from wallboard.history.tasks import cdr_poll
from wallboard.live import selectors as live
from wallboard.live import store
from wallboard.live.pbx import pbx_budget
from wallboard.live.store import source_queue_status

from .conftest import ZONE, cdr_row, local

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 20)
EVENING = local("2026-11-20 18:00")


def stored(rows: list[dict]) -> None:
    services.call_records_upsert(rows=rows, known={100, 101}, zone=ZONE, stored_at=timezone.now())


def answered(number: int, when: str, *, waited: int, talk: int, **fields) -> dict:
    return cdr_row(number, when, duration=str(talk), complete_duration=str(waited + talk), **fields)


def abandoned(number: int, when: str, *, waited: int) -> dict:
    return cdr_row(
        number, when, destination="100", destination_name=None, status="missed",
        duration="0", complete_duration=str(waited),
    )  # fmt: skip


def published(queue: int) -> dict:
    return store.today_get()["queues"][str(queue)]


def status_stored(queue: int, extensions: list[int]) -> None:
    """The queue's status in the live cache, as the poller keeps it."""
    members = [
        {"extension": ext, "calls_taken": 0, "last_call_taken_ago": None, "paused": False,
         "in_use": False}
        for ext in extensions
    ]  # fmt: skip
    now = time.time()
    store.source_set(
        source_queue_status(queue),
        {"queue": queue, "fetched": now, "requested": now, "members": members, "waiting": []},
    )


@pytest.fixture
def day_of_calls(queues_known):
    queues_known([100, 101, 102])
    stored(
        [
            answered(1, "2026-11-20 10:01:00", waited=10, talk=100),
            answered(2, "2026-11-20 10:02:00", waited=30, talk=200, destination="202"),
            abandoned(3, "2026-11-20 10:03:00", waited=3),
            abandoned(4, "2026-11-20 10:20:00", waited=50),
            answered(5, "2026-11-20 10:21:00", waited=5, talk=50, received="101"),
            # Forwarded to a number that is no extension on the boards.
            answered(6, "2026-11-20 10:30:00", waited=8, talk=20, destination="reception"),
            answered(7, "2026-11-19 09:00:00", waited=5, talk=50),  # yesterday
        ]
    )


def test_every_known_queue_gets_the_engines_figures_by_its_own_rules(day_of_calls):
    QueueKpiSettings.objects.create(queue=100, service_level_target_seconds=30)

    services.kpi_today_publish(now=EVENING)

    engine = selectors.queue_figures_today(queues=[100, 101, 102], now=EVENING)
    first = published(100)
    assert first == {
        "offered_today": engine[100].offered,
        "answered_today": engine[100].answered,
        "missed_today": engine[100].unanswered,
        "abandoned_today": engine[100].abandoned,
        "service_level": engine[100].service_level,
        "service_level_met": engine[100].service_level_met,
        "sl_target_seconds": 30,
        "sl_goal_percent": 80,
        "sl_formula": "offered",
        "asa": engine[100].asa,
        "aht": engine[100].aht,
        "abandon_rate": engine[100].abandon_rate,
    }
    # By hand: 3 answered (waits 10, 30, 8), 2 abandoned, 3 of 5 within 30 s.
    assert (first["answered_today"], first["missed_today"], first["service_level"]) == (3, 2, 60.0)
    assert (first["asa"], first["abandon_rate"]) == (16.0, 40.0)
    assert published(101)["answered_today"] == 1
    assert published(101)["sl_target_seconds"] == 20  # no settings row: the defaults
    assert published(102)["offered_today"] == 0  # known, no calls: zeros, not unknown
    publication = store.today_get()
    assert publication["computed_at"] == EVENING.timestamp()
    assert publication["valid_until"] == local("2026-11-21 00:00").timestamp()


def test_each_agent_is_published_per_queue_by_extension(day_of_calls):
    services.kpi_today_publish(now=EVENING)
    agents = store.today_get()["agents"]
    assert agents["100"] == {
        "201": {"answered": 1, "talk_seconds": 100},
        "202": {"answered": 1, "talk_seconds": 200},
    }  # "reception" is no member row, and yesterday's call is not today's
    assert agents["101"] == {"201": {"answered": 1, "talk_seconds": 50}}


def test_a_board_shows_the_figures_in_the_queue_and_the_agents_rows(day_of_calls):
    status_stored(100, [201, 203])
    with time_machine.travel(EVENING, tick=False):
        changed = services.kpi_today_publish()
        snapshot = live.snapshot_get(queue=100)
    assert changed == 1  # the one queue with a snapshot
    assert snapshot["kpi"]["answered_today"] == 3
    assert snapshot["kpi"]["computed_at"] == "2026-11-20T18:00:00+01:00"
    rows = {m["extension"]: (m["answered"], m["talk_seconds"]) for m in snapshot["members"]}
    assert rows == {201: (1, 100), 203: (0, 0)}


def test_the_staffing_hint_is_published_with_what_it_was_made_from(queues_known):
    queues_known([100, 101])
    # The morning: AHT 180 s. The last half hour: 100 calls (200 an hour) = 10 Erlangs.
    stored(
        [answered(n, f"2026-11-20 08:{n:02d}:00", waited=5, talk=180) for n in range(1, 41)]
        + [
            answered(100 + n, f"2026-11-20 10:{(n % 30) + 30:02d}:{n % 60:02d}", waited=5,
                     talk=180)
            for n in range(100)
        ]
    )  # fmt: skip
    now = local("2026-11-20 11:00")

    services.kpi_today_publish(now=now)

    hint = store.today_get()["staffing"]
    expected = selectors.staffing_hint_get(queue=100, now=now)
    assert hint["100"] == {
        "needed": 14,
        "capped": False,
        "max_agents": 200,
        "window_seconds": 1800,
        "calls": 100,
        "min_calls": 10,
        "arrivals_per_hour": 200.0,
        "aht": 180.0,
        "traffic": 10.0,
        "target_seconds": 20,
        "target_percent": 80,
        "service_level": expected.service_level,
        "asa": expected.asa,
    }
    quiet = hint["101"]
    assert (quiet["needed"], quiet["calls"], quiet["aht"], quiet["traffic"]) == (
        None,
        0,
        None,
        None,
    )


def test_a_change_of_a_queues_rules_in_the_admin_is_published_at_once(
    day_of_calls, admin_client, django_capture_on_commit_callbacks
):
    services.kpi_today_publish(now=EVENING)
    assert published(100)["sl_target_seconds"] == 20

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:history_queuekpisettings_add"),
            {
                "queue": 100,
                "service_level_target_seconds": 45,
                "service_level_target_percent": 90,
                "service_level_formula": "answered",
                "short_abandon_seconds": 5,
            },
        )
    assert response.status_code == 302

    first = published(100)
    assert (first["sl_target_seconds"], first["sl_goal_percent"], first["sl_formula"]) == (
        45,
        90,
        "answered",
    )
    rules = QueueKpiSettings.objects.get(queue=100)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:history_queuekpisettings_delete", args=[rules.pk]), {"post": "yes"}
        )
    assert published(100)["sl_target_seconds"] == 20  # back to the defaults


def test_a_rules_change_is_saved_even_when_the_boards_cannot_be_told(
    admin_client, django_capture_on_commit_callbacks, caplog
):
    redis_away = override_settings(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    with redis_away, django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:history_queuekpisettings_add"),
            {
                "queue": 100,
                "service_level_target_seconds": 45,
                "service_level_target_percent": 80,
                "service_level_formula": "offered",
                "short_abandon_seconds": 5,
            },
        )
    assert response.status_code == 302
    assert QueueKpiSettings.objects.get(queue=100).service_level_target_seconds == 45
    assert "not published after a KPI rules change" in caplog.text


def test_the_poll_publishes_also_when_no_row_came_so_midnight_starts_a_new_day(
    cdr_pbx, queues_known
):
    queues_known([100])
    cdr_pbx.days[DAY] = [answered(1, "2026-11-20 23:50:00", waited=4, talk=60)]

    report = services.cdr_poll_tick(now=local("2026-11-20 23:59"))
    assert report is not None and report.failed is None
    assert published(100)["answered_today"] == 1

    services.cdr_poll_tick(now=local("2026-11-21 00:00:30"))  # nothing new on the 21st
    assert published(100)["answered_today"] == 0
    assert store.today_get()["valid_until"] == local("2026-11-22 00:00").timestamp()


def test_a_pbx_failure_stops_the_reading_but_not_the_publication(cdr_pbx, queues_known, caplog):
    queues_known([100])
    stored([answered(1, "2026-11-20 10:00:00", waited=4, talk=60)])
    pbx_budget().report_blocked(3.0)

    report = services.cdr_poll_tick(now=EVENING)

    assert report.failed.startswith("PBX access is blocked")
    assert cdr_pbx.requests == []
    assert published(100)["answered_today"] == 1  # what is stored still counts


@pytest.mark.django_db(transaction=True)  # the first poll runs in a thread of its own
def test_two_polls_never_overlap(cdr_pbx, queues_known):
    queues_known([100])
    cdr_pbx.days[DAY] = [answered(1, "2026-11-20 10:00:00", waited=4, talk=60)]
    answering = threading.Event()
    release = threading.Event()

    def hold(_number: int) -> None:
        answering.set()
        release.wait(10)

    cdr_pbx.before_answer = hold
    first = threading.Thread(target=services.cdr_poll_tick, kwargs={"now": EVENING})
    first.start()
    try:
        assert answering.wait(10)
        # The task (beat's next run, or a second worker) finds the first still reading.
        assert cdr_poll() == {"skipped": "busy"}
        assert len(cdr_pbx.requests) == 1
    finally:
        release.set()
        first.join(10)
    cdr_pbx.before_answer = None
    assert CallRecord.objects.count() == 1
    assert services.cdr_poll_tick(now=EVENING) is not None  # the lock was released


def test_while_actions_crowd_the_budget_the_cdr_read_comes_less_often(cdr_pbx, queues_known):
    """Like the poller's slow sources: a background request in a full window would make an
    agent's action take a poll's slot. The figures are still published every run."""
    queues_known([100])
    cdr_pbx.days[DAY] = [answered(1, "2026-11-20 10:00:00", waited=4, talk=60)]
    assert services.cdr_poll_tick(now=EVENING).days  # read: nobody is acting
    read = len(cdr_pbx.requests)
    store.poll_grid_set({"slot": time.time(), "demand": 3.0, "at": time.time()})  # busy
    stretched = services.cdr_poll_tick(now=EVENING)
    assert stretched.deferred and not stretched.days
    assert len(cdr_pbx.requests) == read
    assert published(100)["answered_today"] == 1
    store.mark_note(services.CDR_READ_MARK, at=time.time() - 3 * settings.CDR_POLL_SECONDS)
    assert services.cdr_poll_tick(now=EVENING).days is not None
    assert len(cdr_pbx.requests) > read  # three periods on, it reads again

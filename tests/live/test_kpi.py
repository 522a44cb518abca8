"""Today's KPIs (answered, missed, service level) against the real simulator and real Redis: the
figures on the board equal what the simulator's CDR says, counting costs one request per KPI
poll, a new day or a shrinking CDR starts the count again, and bad rows are skipped."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from pbxapi import errors as pbx
from wallboard.boards.models import QueueDisplay
from wallboard.live import kpi, poller, selectors, services, store
from wallboard.live.store import SOURCE_KPI, SOURCE_QUEUES, source_queue_status

from .helpers import pbx_paths, poll_until

# Snapshot rebuilds read the queues' service-level targets (boards' QueueDisplay).
pytestmark = pytest.mark.django_db

ZONE = ZoneInfo("Europe/Bratislava")
DEFAULT_TARGET = 20


def _afternoon_of_today() -> float:
    """14:00 today in Bratislava: a day with traffic behind it, whatever time the tests run."""
    today = datetime.now(ZONE).date()
    return datetime.combine(today, time(14), ZONE).timestamp()


@pytest.fixture
def pbx_day(monkeypatch):
    """Make "today" for the KPI count a day the test chooses (the simulator's date)."""
    chosen: dict[str, date] = {}

    def set_day(day: date) -> None:
        chosen["day"] = day
        monkeypatch.setattr(kpi, "pbx_today", lambda: chosen["day"])

    return set_day


def _sim_day(sim) -> date:
    return datetime.fromtimestamp(sim.centre.now(), ZONE).date()


def _cdr_of(sim, day: date) -> list[dict]:
    rows, offset = [], 0
    while True:
        page = sim.centre.cdr_rows(date_from=day, date_to=day, offset=offset)
        rows.extend(page)
        if len(page) < 3000:
            return rows
        offset += len(page)


def _expected(sim, day: date, queue: int, target: int = DEFAULT_TARGET) -> dict:
    """The queue's KPIs worked out from the simulator's own CDR rows for ``day``."""
    calls = [
        r for r in _cdr_of(sim, day) if r["received"] == str(queue) and r["type"] != "outgoing"
    ]
    answered = [r for r in calls if r["application"] == "queue" and r["status"] == "answered"]
    missed = [
        r for r in calls if r["status"] in ("missed", "busy") or r["application"] == "voicemail"
    ]
    waits = [int(r["complete_duration"]) - int(r["duration"]) for r in answered]
    offered = len(answered) + len(missed)
    within = sum(1 for wait in waits if wait <= target)
    return {
        "answered_today": len(answered),
        "missed_today": len(missed),
        "service_level": round(100 * within / offered, 1) if offered else None,
        "sl_target_seconds": target,
    }


def _kpi(queue: int) -> dict:
    snapshot = selectors.snapshot_get(queue=queue) or {}
    figures = dict(snapshot.get("kpi") or {})
    figures.pop("kpi_fetched", None)
    return figures


def _boards_built(sim) -> None:
    """The queue list and every queue's snapshot, as the poller's first round makes them."""
    services.source_fetch(SOURCE_QUEUES)
    for queue in sim.centre.queue_numbers():
        services.source_fetch(source_queue_status(queue))


def _answered_call(sim, queue: int, extension: int, *, waited: int, talk: int = 30) -> None:
    sim.centre.add_waiting_caller(queue, wait_time=waited)
    sim.centre.start_call(queue, extension)
    sim.centre.advance(talk, live=False)
    sim.centre.end_call(extension)


def _missed_call(sim, queue: int, *, waited: int) -> None:
    sim.centre.abandon_caller(sim.centre.add_waiting_caller(queue, wait_time=waited))


def _cdr_requests(sim, since: int) -> int:
    return sum(1 for path in pbx_paths(sim, since) if path.startswith("/api/cdr"))


def test_the_board_shows_what_todays_cdr_says_and_each_kpi_poll_costs_one_request(
    simulator_factory, pbx_day, settings
):
    settings.POLL_KPI_SECONDS = 1.0
    # A stray "" ends every list, as in the API document: it must not shift the offsets.
    sim = simulator_factory(
        history_days=1, start_time=_afternoon_of_today(), document_artefacts=True
    )
    pbx_day(_sim_day(sim))
    queues = sim.centre.queue_numbers()
    store.watch_register("test-board", queues, ttl=120)

    poll_until(lambda: all(_kpi(q).get("answered_today") is not None for q in queues))
    for queue in queues:
        assert _kpi(queue) == _expected(sim, _sim_day(sim), queue)
    assert _kpi(queues[0])["answered_today"] > 0  # the history gave the count something to do

    queue, extension = queues[0], sim.centre.members(queues[0])[0]
    _answered_call(sim, queue, extension, waited=4)
    _answered_call(sim, queue, extension, waited=55)
    _missed_call(sim, queue, waited=12)
    expected = _expected(sim, _sim_day(sim), queue)
    since = len(sim.requests_log)
    reports: list[poller.TickReport] = []

    def kpi_polls() -> int:
        return sum(report.fetched.count(SOURCE_KPI) for report in reports)

    # Until the board shows the new figures, and one more KPI poll that finds nothing new.
    while _kpi(queue) != expected or kpi_polls() < 2:
        assert len(reports) < 60, f"the board never showed {expected}: {_kpi(queue)}"
        reports.append(poller.poll_tick(seconds=0.3))

    assert _cdr_requests(sim, since) == kpi_polls()  # one request per KPI poll, new rows or not
    # The KPIs ride along: the watched queues' statuses and the calls still go round.
    status_polls = sum(report.fetched.count(source_queue_status(queue)) for report in reports)
    assert status_polls >= 2 * kpi_polls()
    assert _kpi(queues[1]) == _expected(sim, _sim_day(sim), queues[1])
    kpi_fetched = selectors.snapshot_get(queue=queue)["kpi"]["kpi_fetched"]
    assert datetime.fromisoformat(kpi_fetched) > datetime.now(ZONE) - timedelta(seconds=30)


def test_at_the_default_period_the_kpis_cost_one_request_while_queues_go_round(
    simulator_factory, settings
):
    sim = simulator_factory(history_days=1)
    queues = sim.centre.queue_numbers()
    store.watch_register("test-board", queues, ttl=120)
    assert settings.POLL_KPI_SECONDS == 120
    reports = [poller.poll_tick(seconds=0.9) for _ in range(3)]

    assert _cdr_requests(sim, 0) == 1
    for queue in queues:
        assert sum(r.fetched.count(source_queue_status(queue)) for r in reports) >= 5
        assert _kpi(queue)["answered_today"] is not None


def test_service_level_uses_each_queues_target_and_only_real_changes_push(simulator, pbx_day):
    pbx_day(_sim_day(simulator))
    first, second = simulator.centre.queue_numbers()
    QueueDisplay.objects.create(queue=first, service_level_target_seconds=50)
    _boards_built(simulator)
    services.source_fetch(SOURCE_KPI)
    assert _kpi(first) == {
        "answered_today": 0,
        "missed_today": 0,
        "service_level": None,  # no calls yet
        "sl_target_seconds": 50,
    }

    extension = simulator.centre.members(first)[0]
    _answered_call(simulator, first, extension, waited=5)
    _answered_call(simulator, first, extension, waited=45)  # within 50 s, not within 20 s
    _answered_call(simulator, first, extension, waited=51)
    _missed_call(simulator, first, waited=30)
    version = selectors.snapshot_get(queue=first)["version"]
    assert services.source_fetch(SOURCE_KPI) == 1  # only the first queue's figures changed

    snapshot = selectors.snapshot_get(queue=first)
    assert snapshot["version"] > version
    assert _kpi(first) == {
        "answered_today": 3,
        "missed_today": 1,
        "service_level": 50.0,  # 2 of 4 within 50 s
        "sl_target_seconds": 50,
    }
    assert _kpi(first) == _expected(simulator, _sim_day(simulator), first, target=50)
    assert _kpi(second) == {
        "answered_today": 0,
        "missed_today": 0,
        "service_level": None,
        "sl_target_seconds": DEFAULT_TARGET,
    }
    # Nothing new: the fetch time moves on, the version does not.
    assert services.source_fetch(SOURCE_KPI) == 0
    after = selectors.snapshot_get(queue=first)
    assert after["version"] == snapshot["version"]


def test_a_new_day_starts_the_count_again(simulator_factory, pbx_day):
    sim = simulator_factory(history_days=2, start_time=_afternoon_of_today())
    today = _sim_day(sim)
    yesterday = today - timedelta(days=1)
    queue = sim.centre.queue_numbers()[0]
    _boards_built(sim)

    pbx_day(yesterday)
    services.source_fetch(SOURCE_KPI)
    assert _kpi(queue) == _expected(sim, yesterday, queue)
    assert store.source_get(SOURCE_KPI)["rows"] == len(_cdr_of(sim, yesterday))

    pbx_day(today)
    since = len(sim.requests_log)
    services.source_fetch(SOURCE_KPI)
    assert _cdr_requests(sim, since) == 1  # from offset 0 of the new day, one page
    assert _kpi(queue) == _expected(sim, today, queue)
    assert _kpi(queue) != _expected(sim, yesterday, queue)
    assert store.source_get(SOURCE_KPI)["rows"] == len(_cdr_of(sim, today))


def test_the_kpi_poll_is_due_right_after_the_pbxs_midnight(settings):
    settings.POLL_KPI_SECONDS = 120
    evening = datetime(2026, 11, 27, 23, 59, 30, tzinfo=ZONE).timestamp()
    attempts = {SOURCE_QUEUES: evening, SOURCE_KPI: evening}

    def kpi_due(now: float) -> bool:
        due = poller.due_sources(now=now, attempts=attempts, known=[100], watched={100})
        return SOURCE_KPI in due

    assert not kpi_due(evening + 29)  # 23:59:59
    assert kpi_due(evening + 30)  # 00:00:00, long before 120 s have passed
    # After the new day's first fetch, the period again.
    attempts[SOURCE_KPI] = evening + 40
    assert not kpi_due(evening + 159)
    assert kpi_due(evening + 160)


def test_a_cdr_that_shrinks_under_the_count_is_counted_again(simulator_factory, pbx_day):
    sim = simulator_factory(history_days=1, start_time=_afternoon_of_today())
    pbx_day(_sim_day(sim))
    queue = sim.centre.queue_numbers()[0]
    _boards_built(sim)
    services.source_fetch(SOURCE_KPI)
    expected = _expected(sim, _sim_day(sim), queue)
    assert _kpi(queue) == expected

    # As if the PBX had lost rows we counted: our offset now points past its last row.
    tally = store.source_get(SOURCE_KPI)
    store.source_set(SOURCE_KPI, dict(tally, rows=tally["rows"] + 7, last=["x", "y", "z"]))
    since = len(sim.requests_log)
    services.source_fetch(SOURCE_KPI)
    assert _cdr_requests(sim, since) == 2  # the check that found it out, then the recount
    assert _kpi(queue) == expected
    assert store.source_get(SOURCE_KPI)["rows"] == tally["rows"]


def test_more_than_a_page_of_rows_is_paged_then_counted_incrementally(simulator_factory, pbx_day):
    sim = simulator_factory(
        history_days=1, start_time=_afternoon_of_today(), call_rate=5.0, daily_curve=False
    )
    day = _sim_day(sim)
    pbx_day(day)
    total = len(_cdr_of(sim, day))
    assert total > 3000
    queues = sim.centre.queue_numbers()
    _boards_built(sim)

    since = len(sim.requests_log)
    services.source_fetch(SOURCE_KPI)
    assert _cdr_requests(sim, since) == total // 3000 + 1
    for queue in queues:
        assert _kpi(queue) == _expected(sim, day, queue)

    _answered_call(sim, queues[1], sim.centre.members(queues[1])[0], waited=3)
    since = len(sim.requests_log)
    services.source_fetch(SOURCE_KPI)
    assert _cdr_requests(sim, since) == 1
    assert _kpi(queues[1]) == _expected(sim, day, queues[1])


def test_a_failed_cdr_fetch_is_handled_like_any_source_and_keeps_the_count(simulator, pbx_day):
    pbx_day(_sim_day(simulator))
    queue = simulator.centre.queue_numbers()[0]
    extension = simulator.centre.members(queue)[0]
    _boards_built(simulator)
    _answered_call(simulator, queue, extension, waited=2)
    services.source_fetch(SOURCE_KPI)

    simulator.centre.set_fault("html500")
    with pytest.raises(pbx.ServerError):
        services.source_fetch(SOURCE_KPI)
    assert selectors.pbx_state_get()["state"] == "unreachable"
    assert _kpi(queue)["answered_today"] == 1  # the board keeps what it had

    simulator.centre.set_fault(None)
    _missed_call(simulator, queue, waited=9)
    services.source_fetch(SOURCE_KPI)
    assert selectors.pbx_state_get()["state"] == "ok"
    assert _kpi(queue) == _expected(simulator, _sim_day(simulator), queue)


def _row(**fields) -> dict:
    row = {
        "id": "1",
        "type": "incoming",
        "when": "2026-11-28 10:00:00",
        "caller": "00421910818189",
        "received": "100",
        "destination": "201",
        "duration": "30",
        "application": "queue",
        "status": "answered",
        "recording_file": "",
        "unique_id": "1764320400.1",
        "complete_duration": "42",
    }
    row.update(fields)
    return row


def test_bad_rows_are_skipped_but_keep_their_place_and_unknown_waits_stay_out_of_sl():
    rows = [
        _row(),  # answered after 12 s
        _row(id="2", complete_duration=None),  # answered, wait unknown: no SL either way
        _row(id="3", duration=None),  # answered, talk time unknown: wait unknown
        _row(id="4", duration="90", complete_duration="60"),  # talk > whole call: unknown
        _row(id=None),  # unreadable: skipped
        _row(id="6", when="yesterday-ish"),  # unreadable: skipped
        _row(id="7", duration="abc"),  # unreadable: skipped
        _row(id="8", application="queue", status="missed", duration="0"),
        _row(
            id="9",
            application="hangup",
            status="missed",
            received=None,
            recording_file="q-100-00421910818189-20261128-100000-1.mp3",
        ),  # the queue only in the recording's name
        _row(id="10", application="voicemail", status="answered"),  # timed out, left a message
        _row(id="11", application="playback", status="answered"),  # heard the greeting only
        _row(id="12", type="outgoing", received="100"),  # an agent's own call
        _row(id="13", received="555"),  # not a queue we know
        _row(id="14", status="busy", application="queue", received="101"),
    ]
    tally = kpi.tally_new(date(2026, 11, 28), known=[100, 101])
    new, changed, problems = kpi.rows_count(tally, rows, known={100, 101}, fetched=1.0)

    assert len(problems) == 3
    assert new["rows"] == len(rows)  # positions in the PBX's list, read or not
    assert new["last"] == ["14", "1764320400.1", "2026-11-28 10:00:00"]
    assert changed == {100, 101}
    assert new["queues"]["100"] == {"answered": 4, "missed": 3, "waits": {"12": 1}}
    assert new["queues"]["101"] == {"answered": 0, "missed": 1, "waits": {}}
    # 1 answered within 20 s of 1 timed answer + 3 missed.
    assert kpi.service_level(new["queues"]["100"], target=20) == 25.0
    assert kpi.service_level(new["queues"]["100"], target=5) == 0.0
    assert kpi.service_level({"answered": 2, "missed": 0, "waits": {}}, target=20) is None
    assert kpi.page_rows([_row(), "", None, _row(id="2")]) == [_row(), _row(id="2")]

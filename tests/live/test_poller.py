"""The poller against the real simulator and real Redis: what it fetches, in which order, how
snapshots and states follow the PBX, and how it behaves when the PBX blocks us or goes down."""

from __future__ import annotations

import threading
import time

import pytest
import redis
import time_machine
from django.conf import settings

from wallboard.live import poller, selectors, services, store
from wallboard.live.pbx import pbx_budget
from wallboard.live.store import (
    SOURCE_CALLS,
    SOURCE_EXTENSIONS,
    SOURCE_QUEUES,
    source_queue_status,
)

from .helpers import pbx_paths, poll_until, ticks

# No database mark: the poll path (fetch, rebuild, push) must never touch the database, and
# pytest-django refuses any query here.


def _all_snapshots(sim):
    return all(selectors.snapshot_get(queue=q) for q in sim.centre.queue_numbers())


def _first_build_watched(sim):
    """Poll until every queue has a snapshot, then keep them on an (imaginary) open board."""
    poll_until(lambda: _all_snapshots(sim))
    store.watch_register("test-board", sim.centre.queue_numbers(), ttl=120)


def _grid_restart() -> None:
    """A grid last used long ago: the tick's first slot is now."""
    store.poll_grid_set({"slot": time.time() - 100, "demand": 0.0, "at": time.time() - 100})


def _member(queue, extension):
    snapshot = selectors.snapshot_get(queue=queue)
    return next(m for m in snapshot["members"] if m["extension"] == extension)


def test_it_orders_sources_by_staleness(settings):
    settings.POLL_UNWATCHED_SECONDS = 30
    attempts = {
        SOURCE_QUEUES: 100.0, SOURCE_EXTENSIONS: 100.0, SOURCE_CALLS: 104.0,
        "queue_status:1": 103.0, "queue_status:2": 105.0, "queue_status:3": 80.0,
    }  # fmt: skip
    due = poller.due_sources(now=106.0, attempts=attempts, known=[1, 2, 3], watched={1, 2})
    # Watched queues and calls go round-robin, oldest first; the unwatched queue waits 30 s.
    assert due == ["queue_status:1", SOURCE_CALLS, "queue_status:2"]
    due = poller.due_sources(now=170.0, attempts=attempts, known=[1, 2, 3], watched={1, 2})
    assert due == [
        "queue_status:1", SOURCE_CALLS, "queue_status:2", "queue_status:3", SOURCE_EXTENSIONS,
    ]  # fmt: skip
    # Nothing fetched yet: the queue list first (it says which queues exist), then names.
    assert poller.due_sources(now=1.0, attempts={}, known=[], watched=set()) == [
        SOURCE_QUEUES, SOURCE_EXTENSIONS,
    ]  # fmt: skip


def test_it_builds_every_queues_snapshot_from_the_pbx(simulator):
    poll_until(lambda: _all_snapshots(simulator))
    queue = simulator.centre.queue_numbers()[0]
    snapshot = selectors.snapshot_get(queue=queue)
    assert isinstance(snapshot["version"], int) and snapshot["version"] > 0
    assert snapshot["name"]
    assert {m["extension"] for m in snapshot["members"]} == set(simulator.centre.members(queue))
    assert all(m["name"] for m in snapshot["members"])  # joined with the extension list
    names = {e["extension"]: e["name"] for e in selectors.extensions_get()}
    assert all(names[m["extension"]] == m["name"] for m in snapshot["members"])
    assert snapshot["fetched"]["queue_status"] and snapshot["fetched"]["extensions"]
    state = selectors.pbx_state_get()
    assert state["state"] == "ok"
    assert {"calls", "extensions", "queues", f"queue_status:{queue}"} <= set(state["last_success"])
    assert [s["queue"] for s in selectors.queue_summaries()] == simulator.centre.queue_numbers()


def test_it_versions_and_pushes_only_real_changes(simulator):
    _first_build_watched(simulator)
    queue = simulator.centre.queue_numbers()[0]
    simulator.centre.add_waiting_caller(queue, caller="00421905000001", wait_time=5)
    poll_until(lambda: selectors.snapshot_get(queue=queue)["counts"]["waiting"] == 1)
    version = selectors.snapshot_get(queue=queue)["version"]
    since = selectors.snapshot_get(queue=queue)["waiting"][0]["since"]

    # The caller's wait grows every second; nothing else happens: no new version.
    before = len(simulator.requests_log)
    reports = ticks(4)
    assert len(simulator.requests_log) - before >= 4  # it did poll
    snapshot = selectors.snapshot_get(queue=queue)
    assert snapshot["version"] == version
    assert snapshot["waiting"][0]["since"] == since
    assert sum(r.changed for r in reports) == 0

    simulator.centre.clear_waiting(queue)
    poll_until(lambda: selectors.snapshot_get(queue=queue)["counts"]["waiting"] == 0)
    assert selectors.snapshot_get(queue=queue)["version"] > version


def test_versions_keep_rising_after_redis_loses_them(simulator, redis_prefix):
    """Our Redis keeps nothing on disk: after a wipe, boards that remember the old versions must
    still accept the new snapshots, so versions never go back."""
    _first_build_watched(simulator)
    queue = simulator.centre.queue_numbers()[0]
    version = selectors.snapshot_get(queue=queue)["version"]
    connection = redis.Redis.from_url(settings.REDIS_URL)
    connection.delete(*connection.scan_iter(match=f"{redis_prefix}*"))
    store.watch_register("test-board", [queue], ttl=120)
    simulator.centre.add_waiting_caller(queue, caller="00421905000002")
    poll_until(lambda: (selectors.snapshot_get(queue=queue) or {}).get("counts", {}).get("waiting"))
    assert selectors.snapshot_get(queue=queue)["version"] > version


def test_it_tracks_member_states_across_polls(simulator):
    _first_build_watched(simulator)
    queue = simulator.centre.queue_numbers()[0]
    agent = simulator.centre.members(queue)[0]
    assert _member(queue, agent)["state"] == "available"

    simulator.centre.start_call(queue, agent, caller="00421905000002")
    member = poll_until(
        lambda: _member(queue, agent)["state"] == "on_call" and _member(queue, agent)
    )
    assert member["call"]["peer"] == "00421905000002"
    since = member["state_since"]
    with time_machine.travel(time.time() + 60, tick=True):  # a minute on, still on that call
        ticks(3)
        assert _member(queue, agent)["state_since"] == since  # the PBX does not say; we remember

    simulator.centre.end_call(agent)
    simulator.centre.set_paused(queue, agent, True)
    member = poll_until(
        lambda: _member(queue, agent)["state"] == "paused" and _member(queue, agent)
    )
    assert member["state_since"] > since
    simulator.centre.set_registered(agent, False)
    # Extensions refresh on their own (60 s) period; make them due now for the test.
    store.redis_connection().hdel(store.key("attempted"), SOURCE_EXTENSIONS)
    poll_until(lambda: _member(queue, agent)["state"] == "offline")


def test_a_403_stops_all_pbx_traffic_and_says_blocked_until(simulator):
    _first_build_watched(simulator)
    simulator.centre.set_fault("forbidden")
    poll_until(lambda: selectors.pbx_state_get()["state"] == "blocked", timeout=5)
    state = selectors.pbx_state_get()
    assert state["blocked_until"]
    assert pbx_budget().blocked_until() is not None

    simulator.centre.set_fault(None)
    before = len(simulator.requests_log)
    reports = ticks(4)
    assert len(simulator.requests_log) == before  # not one request while blocked
    assert {r.skipped for r in reports} == {"blocked"}

    # After the block (3 s in tests) polling resumes by itself.
    poll_until(lambda: selectors.pbx_state_get()["state"] == "ok", timeout=10)
    assert selectors.pbx_state_get()["blocked_until"] is None


@pytest.mark.parametrize("fault", ["down", "html500"])
def test_an_outage_ages_the_data_and_recovery_resumes_polling(simulator, fault):
    _first_build_watched(simulator)
    queue = simulator.centre.queue_numbers()[0]
    fetched = selectors.snapshot_get(queue=queue)["fetched"]["queue_status"]
    fresh_at = selectors.fresh_at_get()

    simulator.centre.set_fault(fault)
    poll_until(lambda: selectors.pbx_state_get()["state"] == "unreachable", timeout=5)
    down_since = selectors.pbx_state_get()["unreachable_since"]
    assert selectors.pbx_state_get()["last_error"]
    assert store.backoff_get()["failures"] >= 1
    with time_machine.travel(time.time() + 60, tick=True):  # past any backoff, still down
        ticks(3)
        state = selectors.pbx_state_get()
    assert state["unreachable_since"] == down_since  # since the first failure
    assert selectors.snapshot_get(queue=queue)["fetched"]["queue_status"] == fetched
    assert selectors.fresh_at_get() == fresh_at  # the data's age keeps growing

    simulator.centre.set_fault(None)
    poll_until(lambda: selectors.pbx_state_get()["state"] == "ok", timeout=10)
    poll_until(lambda: selectors.snapshot_get(queue=queue)["fetched"]["queue_status"] > fetched)
    assert store.backoff_get()["failures"] == 0


def test_ticks_never_overlap(simulator, settings):
    lock = store.PollLock(5.0)
    assert lock.acquire()
    before = len(simulator.requests_log)
    assert poller.poll_tick(seconds=0.3).skipped == "busy"
    assert len(simulator.requests_log) == before
    other = store.PollLock(5.0)
    assert not other.release()  # a different token cannot free it
    assert lock.release()
    assert poller.poll_tick(seconds=0.3).skipped is None


def test_the_next_tick_takes_over_where_the_last_one_stops(simulator, settings):
    """A tick runs a little past the next beat; the next one waits for the lock meanwhile
    instead of giving up, so no grid slot falls between two ticks."""
    settings.POLL_TICK_SECONDS = 1.0
    assert poller.tick_seconds() > settings.POLL_TICK_SECONDS
    running = store.PollLock(5.0)
    assert running.acquire()
    timer = threading.Timer(0.2, running.release)  # the running tick ends a little later
    timer.start()
    began = time.monotonic()
    report = poller.poll_tick(seconds=0.1)
    timer.join()
    assert report.skipped is None
    assert time.monotonic() - began > 0.15


def test_it_spends_the_polling_budget_without_exceeding_it(simulator_factory, settings):
    sim = simulator_factory(queues=4, agents=8)
    _first_build_watched(sim)
    start = len(sim.requests_log)
    began = time.monotonic()
    while time.monotonic() - began < 3.0:
        poller.poll_tick(seconds=0.9)
    entries = list(sim.requests_log)[start:]
    times = [entry.at for entry in entries]
    window, limit = settings.PBX_BUDGET_WINDOW, settings.PBX_BUDGET_REQUESTS
    poll_share = limit - settings.PBX_ACTION_RESERVE
    busiest = max(sum(1 for t in times if s <= t < s + window) for s in times)
    # The budget counts grants on its own clock; the simulator sees arrivals a little later, so
    # the polling share (16) can look like 17 here. What matters: never over the budget.
    assert busiest <= limit
    assert all(entry.status == 200 for entry in entries)
    # About 3 windows of the polling share; allow for a busy shared machine.
    assert len(entries) >= 0.6 * 3 * poll_share
    paths = pbx_paths(sim, start)
    statuses = [p for p in paths if p.startswith("/api/queue/status")]
    assert abs(len(statuses) / 4 - paths.count("/api/call/statistics")) <= 2  # round-robin


def test_poll_requests_sit_on_an_even_grid(live_settings):
    spacing = poller.poll_spacing_seconds()
    # The polls' share, spread over the window and the budget's guard (the "all < N" span).
    assert spacing == pytest.approx(
        (live_settings.PBX_BUDGET_WINDOW + pbx_budget().guard)
        / (live_settings.PBX_BUDGET_REQUESTS - live_settings.PBX_ACTION_RESERVE)
    )
    assert poller._pace(1.0) == 0.0  # the first request goes at once
    assert poller._pace(1.0) == pytest.approx(spacing, abs=0.01)  # the next waits its slot
    assert poller._pace(spacing / 10) is None  # a slot after the tick is left to the next tick
    # Long after (idle, blocked): the grid restarts instead of bursting to catch up.
    store.poll_grid_set({"slot": time.time() - 10 * live_settings.PBX_BUDGET_WINDOW})
    assert poller._pace(1.0) == 0.0
    assert store.poll_grid_get()["slot"] == pytest.approx(time.time(), abs=0.05)
    # A lag shorter than that is caught up, but by one slot at most.
    store.poll_grid_set({"slot": time.time() - live_settings.PBX_BUDGET_WINDOW / 2})
    assert poller._pace(1.0) == 0.0
    assert poller._pace(1.0) == 0.0  # the one slot caught up
    assert poller._pace(1.0) == pytest.approx(spacing, abs=0.01)  # and back on the grid


def test_a_grid_stored_by_an_older_version_is_read(live_settings):
    store.redis_connection().set(store.key("poll-grid"), repr(time.time() - 100))
    assert poller._pace(1.0) == 0.0
    assert store.poll_grid_get()["demand"] == 0.0  # the budget's window is empty


@pytest.mark.parametrize(
    ("reserve", "demand", "left"),
    [
        (1, 0.0, 1),  # polling alone: the reserve
        (1, 0.3, 1),  # an action now and then fits into it
        (1, 1.0, 1),  # one action per window: still fits
        (1, 1.67, 2),  # 20 actions a minute: room for 2
        (2, 0.5, 2),  # never fewer than the reserve
        (1, 40.0, 17),  # never all of them: the boards keep one slot per window
    ],
)
def test_the_polls_leave_the_other_lanes_what_they_use(live_settings, reserve, demand, left):
    live_settings.PBX_ACTION_RESERVE = reserve
    assert poller.polls_leave(demand) == left
    share = live_settings.PBX_BUDGET_REQUESTS - left
    assert poller.poll_spacing_seconds(demand) == pytest.approx(
        (live_settings.PBX_BUDGET_WINDOW + pbx_budget().guard) / share
    )


def test_the_demand_follows_what_the_actions_used():
    rise, fall = poller.DEMAND_RISE_SECONDS, poller.DEMAND_FALL_SECONDS
    assert poller.demand_update(None, actions=2, now=100.0) == 2.0
    idle = {"slot": 99.0, "demand": 0.0, "at": 100.0}
    # One action stays in the window for 5 s: not enough to take a slot from the polls.
    once = poller.demand_update(idle, actions=1, now=105.0)
    assert 0.5 < once < 1.0
    assert poller.polls_leave(once) == 1
    # A stream of them gets its room within seconds...
    busy = poller.demand_update(idle, actions=2, now=100.0 + 3 * rise)
    assert busy == pytest.approx(2.0, abs=0.1)
    assert poller.polls_leave(busy) == 2
    # ... and gives it back slowly when it stops.
    after = poller.demand_update({**idle, "demand": 2.0}, actions=0, now=100.0 + fall)
    assert after == pytest.approx(2.0 / 2.718, rel=0.01)


def test_the_grid_leaves_room_for_actions_the_budget_has_seen(live_settings):
    """The poller reads the budget's usage: with actions busy, its slots spread out; background
    fetches are not counted (they wait for room, they need none of their own)."""
    budget = pbx_budget()
    store.poll_grid_set({"slot": time.time(), "demand": 1.9, "at": time.time()})
    budget.acquire(priority="action", max_wait=0)
    budget.acquire(priority="action", max_wait=0)
    budget.acquire(priority="background", max_wait=0)
    wait = poller._pace(5.0)
    assert wait == pytest.approx(poller.poll_spacing_seconds(2.0), abs=0.02)
    assert store.poll_grid_get()["demand"] == pytest.approx(1.9, abs=0.05)


def _due(sim) -> list[str]:
    queues = sim.centre.queue_numbers()
    return poller.due_sources(
        now=time.time(), attempts=store.attempts_get(), known=queues, watched=set(queues)
    )


def _spend_budget(lane: str, leave: int = 0) -> int:
    """Take slots of the current window on ``lane`` until ``leave`` are left; returns how many."""
    budget, taken = pbx_budget(), 0
    while budget.used() < budget.requests - leave:
        budget.acquire(priority=lane, max_wait=0)
        taken += 1
    return taken


def test_a_source_the_budget_refuses_keeps_its_place(simulator):
    """Refused = nothing sent: marking it attempted would send it to the back of the round-robin
    and leave its queue a whole extra round without a fetch."""
    _first_build_watched(simulator)
    first = _due(simulator)[0]
    assert first not in poller.BACKGROUND_SOURCES
    before = store.attempts_get().get(first)
    _spend_budget("action")
    _grid_restart()  # the grid restarts: the tick's first slot is now
    report = poller.poll_tick(seconds=0.2)
    assert report.fetched == []
    assert store.attempts_get().get(first) == before
    assert _due(simulator)[0] == first


def test_a_poll_the_budget_holds_back_waits_within_the_tick(simulator):
    _first_build_watched(simulator)
    _spend_budget("action")
    _grid_restart()
    frees = pbx_budget().window + pbx_budget().guard
    report = poller.poll_tick(seconds=frees + 0.3)
    assert report.fetched  # it went on once the budget freed a slot, within the tick


def test_a_refusal_moves_the_grid_to_when_the_budget_frees_a_slot(live_settings):
    """Not a lag to catch up: the polls after it would come in a burst and fill the window
    again one window later."""
    store.poll_grid_set({"slot": time.time() - 3, "demand": 0.0, "at": time.time()})
    poller._grid_hold(0.4)
    assert poller._pace(1.0) == pytest.approx(0.4, abs=0.02)
    spacing = poller.poll_spacing_seconds()
    assert poller._pace(1.0) == pytest.approx(0.4 + spacing, abs=0.02)  # and on from there


def test_an_action_refresh_counts_as_the_queues_poll(simulator):
    _first_build_watched(simulator)
    first = next(s for s in _due(simulator) if s.startswith(store.QUEUE_STATUS_PREFIX))
    services.queue_refresh(queue=int(first.removeprefix(store.QUEUE_STATUS_PREFIX)))
    assert _due(simulator)[-1] == first  # just fetched: the back of the round-robin
    _grid_restart()
    report = poller.poll_tick(seconds=0.1)  # grid slots at 0 and 1/16 s: the two others
    assert report.fetched
    assert first not in report.fetched


def test_a_refresh_made_during_a_tick_counts_too(simulator_factory, monkeypatch):
    """An action's refresh runs in another process while the tick is under way."""
    simulator = simulator_factory(queues=4, agents=8)  # 5 sources: more than the tick's slots
    _first_build_watched(simulator)
    due = _due(simulator)
    second = next(s for s in due[1:] if s.startswith(store.QUEUE_STATUS_PREFIX))
    real_fetch = services.source_fetch
    refreshed = []

    def fetch_then_an_action_refreshes(source, **options):
        changed = real_fetch(source, **options)
        if not refreshed:
            refreshed.append(second)
            services.queue_refresh(queue=int(second.removeprefix(store.QUEUE_STATUS_PREFIX)))
        return changed

    monkeypatch.setattr(services, "source_fetch", fetch_then_an_action_refreshes)
    _grid_restart()
    report = poller.poll_tick(seconds=0.2)  # grid slots at 0, 1/16, 2/16, 3/16 s
    assert refreshed
    assert len(report.fetched) >= 2
    assert report.fetched[0] == due[0]
    assert second not in report.fetched


def test_background_sources_do_not_take_grid_slots(simulator, monkeypatch):
    """The queue list and extensions go on the background lane, off the poll grid, so a round
    that carries one is not one request longer."""
    _first_build_watched(simulator)
    for source in poller.BACKGROUND_SOURCES:
        store.attempt_forget(source)
    lanes: dict[str, str] = {}
    real_fetch = services.source_fetch

    def noting_lanes(source, *, priority, **options):
        lanes[source] = priority
        return real_fetch(source, priority=priority, **options)

    paced = []
    real_pace = poller._pace

    def counting_pace(remaining):
        wait = real_pace(remaining)
        if wait is not None:
            paced.append(wait)
        return wait

    monkeypatch.setattr(services, "source_fetch", noting_lanes)
    monkeypatch.setattr(poller, "_pace", counting_pace)
    _grid_restart()
    report = poller.poll_tick(seconds=0.3)
    background = [s for s in report.fetched if s in poller.BACKGROUND_SOURCES]
    round_robin = [s for s in report.fetched if s not in poller.BACKGROUND_SOURCES]
    assert sorted(background) == sorted(poller.BACKGROUND_SOURCES)
    assert {lanes[s] for s in background} == {"background"}
    assert {lanes[s] for s in round_robin} == {"poll"}
    assert len(paced) == len(round_robin) >= 2  # one grid slot per round-robin request only


def test_a_refused_background_source_stays_due_and_the_round_robin_goes_on(simulator, settings):
    _first_build_watched(simulator)
    time.sleep(settings.PBX_BUDGET_WINDOW + 0.2)  # an empty window (and its guard)
    store.attempt_forget(SOURCE_EXTENSIONS)
    settings.PBX_ACTION_RESERVE = 2
    _spend_budget("action", leave=1)  # background may not take the last slot; a poll may
    _grid_restart()
    report = poller.poll_tick(seconds=0.2)
    assert len(report.fetched) == 1
    assert report.fetched[0] not in poller.BACKGROUND_SOURCES
    assert SOURCE_EXTENSIONS not in store.attempts_get()  # still due, first in line
    assert _due(simulator)[0] == SOURCE_EXTENSIONS


def test_slow_sources_wait_longer_while_actions_need_extra_room(settings):
    """A background request in a window full of actions makes the next action take a poll's
    slot; while supervisors act that much, names and registrations come less often instead."""
    period = settings.POLL_EXTENSIONS_SECONDS
    attempts = {SOURCE_EXTENSIONS: 100.0, SOURCE_QUEUES: 100.0}
    now = 100.0 + 1.5 * period
    normal = poller.due_sources(now=now, attempts=attempts, known=[1], watched={1})
    busy = poller.due_sources(
        now=now, attempts=attempts, known=[1], watched={1}, slow=poller.BACKGROUND_STRETCH
    )
    assert SOURCE_EXTENSIONS in normal
    assert SOURCE_EXTENSIONS not in busy
    assert "calls" in busy  # the round-robin is not slowed


def test_a_clock_stepped_back_does_not_freeze_the_round_robin(settings):
    """Attempts noted before the clock went back an hour are not in the future: due at once."""
    now = 1_000_000.0
    attempts = {
        SOURCE_QUEUES: now - 10,
        SOURCE_EXTENSIONS: now - 10,
        SOURCE_CALLS: now + 3600,
        source_queue_status(100): now + 3599,
        source_queue_status(101): now - 1,
    }
    due = poller.due_sources(now=now, attempts=attempts, known=[100, 101], watched={100, 101})
    assert due[:2] == [SOURCE_CALLS, source_queue_status(100)]  # as if never fetched
    assert source_queue_status(101) in due


def test_a_backoff_noted_before_the_clock_went_back_is_over(simulator, settings):
    _first_build_watched(simulator)
    store.backoff_set({"failures": 3, "until": time.time() + 3600})
    assert poller.poll_tick(seconds=0.3).skipped is None
    store.backoff_set({"failures": 1, "until": time.time() + 0.4})
    assert poller.poll_tick(seconds=0.3).skipped == "backoff"

"""The chaos run's measures: what counts as fresh data on a TV, gaps, windows and the audit check.

The run itself (bench/chaos.py) needs nginx, PostgreSQL and minutes; these are its rules on
hand-made data, so a wrong verdict in its table has a test to fail first.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bench.chaos import (
    audit_missing,
    longest_gap,
    max_in_window,
    stable_recovery,
    unaudited_pbx_actions,
)
from bench.chaos_load import ActionRecord, TvRecord, TvState

WALL = 1_800_000_000.0  # the chaos process's wall clock at mono = 100.0


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def tv(*, notice: float = 10.0, polls: dict[int, list[float]] | None = None) -> TvState:
    """A TV whose PBX answered each queue's status at the given monotonic times."""
    polls = polls or {}

    def polled(queue: int, at: float) -> float | None:
        return max((t for t in polls.get(queue, []) if t <= at), default=None)

    return TvState(TvRecord("tv"), notice_seconds=notice, polled=polled)


def snapshot(queue: int, fetched: float) -> dict:
    return {"type": "snapshot", "queue": queue, "data": {"fetched": {"queue_status": iso(fetched)}}}


def test_it_counts_a_new_poll_result_as_fresh_data_but_not_a_repeated_one():
    state = tv(polls={100: [99.9, 104.9]})
    state.note({"type": "hello", "server_time": iso(WALL)}, mono=100.0, wall=WALL)
    state.note(snapshot(100, WALL - 1), mono=100.1, wall=WALL + 0.1)
    state.note(snapshot(100, WALL - 1), mono=102.6, wall=WALL + 2.6)  # a resync, no new poll
    state.note(snapshot(100, WALL + 2), mono=105.1, wall=WALL + 5.1)
    assert state.record.fresh == [(100.1, 99.9), (105.1, 104.9)]
    assert state.record.opens == [100.0] and state.record.connected


def test_it_wants_the_pbx_to_have_answered_that_queue_lately():
    # New to the TV, but the PBX last answered queue 100 30 s ago: stored while polling was
    # stopped (a reconnect shows it). Queue 101 was answered a moment ago.
    state = tv(polls={100: [70.0], 101: [99.5]})
    state.note({"type": "hello", "server_time": iso(WALL)}, mono=100.0, wall=WALL)
    state.note(snapshot(100, WALL - 30), mono=100.1, wall=WALL + 0.1)
    state.note(snapshot(101, WALL - 1), mono=100.2, wall=WALL + 0.2)
    state.note(snapshot(102, WALL - 1), mono=100.3, wall=WALL + 0.3)  # never answered at all
    assert state.record.fresh == [(100.2, 99.5)]


def test_no_server_clock_takes_part_in_fresh_data():
    # The server's clocks stepped back 30 s: its times look old, the polls are not.
    state = tv(polls={100: [100.4]})
    state.note({"type": "hello", "server_time": iso(WALL)}, mono=100.0, wall=WALL)
    state.note(snapshot(100, WALL - 31), mono=100.5, wall=WALL + 0.5)
    assert state.record.fresh == [(100.5, 100.4)]


def test_it_keeps_a_heartbeats_fresh_at_apart_from_fresh_data():
    # fresh_at is what the page's age banner follows; it is not a poll result of a queue.
    state = tv()
    state.note({"type": "hello", "server_time": iso(WALL)}, mono=100.0, wall=WALL)
    beat = {"type": "heartbeat", "server_time": iso(WALL + 5), "fresh_at": iso(WALL + 4)}
    state.note(beat, mono=105.0, wall=WALL + 5)
    assert state.record.fresh == []
    assert state.page_shows_fresh(wall=WALL + 13)
    assert not state.page_shows_fresh(wall=WALL + 14)


def test_the_page_takes_the_newest_of_fresh_at_and_its_panels():
    state = tv()
    state.note({"type": "hello", "server_time": iso(WALL)}, mono=100.0, wall=WALL)
    assert not state.page_shows_fresh(wall=WALL)  # nothing yet: "no data"
    state.note(snapshot(100, WALL - 5), mono=100.0, wall=WALL)
    state.note({"type": "heartbeat", "server_time": iso(WALL), "fresh_at": None}, mono=100.0,
               wall=WALL)  # fmt: skip
    assert state.page_shows_fresh(wall=WALL + 4.9)
    assert not state.page_shows_fresh(wall=WALL + 5.0)
    # A time stamped "in the future" (before a clock step back) keeps the page content.
    state.note(snapshot(101, WALL + 30), mono=101.0, wall=WALL + 1)
    assert state.page_shows_fresh(wall=WALL + 35)


def test_it_notes_pbx_state_changes_only():
    state = tv()
    for mono, value in ((1.0, "ok"), (2.0, "ok"), (3.0, "unreachable"), (4.0, "ok")):
        state.note({"type": "pbx", "data": {"state": value}}, mono=mono, wall=WALL)
    assert state.record.pbx_states == [(1.0, "ok"), (3.0, "unreachable"), (4.0, "ok")]


def test_it_counts_the_most_requests_in_any_window():
    assert max_in_window([], 5.0) == 0
    assert max_in_window([0.0, 1.0, 4.9, 5.0, 5.1], 5.0) == 4  # (0.1, 5.1] holds 1.0..5.1
    assert max_in_window([0.0, 5.0, 10.0], 5.0) == 1  # as the PBX counts: 5 s later is free


def test_it_counts_a_phases_windows_with_their_lead_in():
    before, inside = [7.0, 7.5, 8.0, 8.5], [10.0, 10.5, 11.0]
    # Requests just before a phase still count in the windows that end inside it...
    assert max_in_window(before + inside, 5.0, since=10.0) == 7
    # ...but a window that ends before the phase is the previous phase's.
    assert max_in_window([*before, 20.0], 5.0, since=10.0) == 1


def test_it_finds_the_longest_time_without_fresh_data():
    assert longest_gap([1.0, 3.0, 9.0, 10.0], start=2.0, end=12.0) == 6.0
    assert longest_gap([1.0], start=2.0, end=12.0) == 11.0  # from the last receipt before
    assert longest_gap([], start=2.0, end=12.0) == 10.0


def action(**overrides) -> ActionRecord:
    values = {
        "phase": "p", "queue": 100, "extension": 201, "action": "pause", "sent": 0.0,
        "sent_wall": WALL, "answered": 1.0, "answered_wall": WALL + 1, "status": 200,
        "reason": "accepted", "ok": True,
    }  # fmt: skip
    values.update(overrides)
    return ActionRecord(**values)


def row(**overrides) -> dict:
    values = {"queue": 100, "extension": 201, "action": "pause", "ok": True,
              "reason": "accepted", "created": WALL + 0.2}  # fmt: skip
    values.update(overrides)
    return values


def test_it_matches_each_answered_action_to_a_row_of_its_own():
    actions = [action(), action(sent_wall=WALL + 2, answered_wall=WALL + 3)]
    assert audit_missing(actions, [row(), row(created=WALL + 2.5)], slack=1.0) == 0
    # One row cannot vouch for two actions.
    assert audit_missing(actions, [row()], slack=1.0) == 1


def test_it_wants_the_rows_verdict_and_time_to_match():
    assert audit_missing([action()], [row(ok=False, reason="refused")], slack=1.0) == 1
    assert audit_missing([action()], [row(created=WALL + 60)], slack=1.0) == 1
    assert audit_missing([action()], [row(extension=202)], slack=1.0) == 1


def test_it_needs_no_row_for_unanswered_or_unavailable_actions():
    unanswered = action(reason=None, ok=None, status=None, answered_wall=None, error="ReadTimeout")
    unavailable = action(reason="unavailable", ok=False, status=503)
    assert audit_missing([unanswered, unavailable], [], slack=1.0) == 0


def test_it_counts_pbx_actions_no_row_could_have_sent():
    rows = [row(), row(ok=None, reason=""), row(ok=False, reason="budget_exhausted")]
    # accepted and pending could each have sent one; budget_exhausted sent nothing.
    assert unaudited_pbx_actions(2, rows) == 0
    assert unaudited_pbx_actions(3, rows) == 1


def recovery(fresh, now: float):
    """Receipts each 0.1 s after the PBX answered; the fault ended at 50.0."""
    return stable_recovery(
        [(r, r - 0.1) for r in fresh], origin=50.0, now=now, notice=10.0, settle=15.0
    )


def test_it_calls_a_tv_recovered_once_it_stays_fresh_long_enough():
    steady = [52.0 + 2.5 * i for i in range(10)]  # 52.0 ... 74.5
    assert recovery(steady, now=75.0) == 52.0
    assert recovery(steady[:5], now=63.0) is None  # fresh, but not for 15 s yet


def test_it_moves_recovery_past_a_relapse():
    # Fresh at once after the fault, then 40 s without data (a block), then fresh again.
    fresh = [51.0, 53.0, 93.0, 95.5, 98.0, 100.5, 103.0, 105.5, 108.0, 110.5]
    assert recovery(fresh, now=111.0) == 93.0
    assert recovery(fresh, now=100.0) is None  # the early data do not count, 93 is too recent
    assert recovery(fresh[:2], now=70.0) is None  # stale right now


def test_it_does_not_count_results_polled_before_the_fault_ended():
    # Received after the fault, but the PBX answered that poll before it ended.
    assert (
        stable_recovery(
            [(50.5, 49.0), (53.0, 52.9)], origin=50.0, now=62.0, notice=10.0, settle=5.0
        )
        == 53.0
    )

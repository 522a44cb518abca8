"""Call records: every row shape, rows written when calls end, repeat callers, a week of
history, date-indexed paging, and the scripting API that bends the CDR (late rows, shrinking,
shifting)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxapi.simulator import CallCentre
from pbxapi.simulator.rules import QUEUE_TIMEOUT

from .conftest import START, TZ, config, url

# Friday 27 November 2026 at 14:30 (conftest START); with history_days=8 the CDR covers
# Friday 20 November to today.
FIRST_DAY, TODAY = date(2026, 11, 20), date(2026, 11, 27)


def epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=TZ).timestamp()


def all_rows(centre: CallCentre, **filters) -> list[dict]:
    rows, offset = [], 0
    while True:
        page = centre.cdr_rows(offset=offset, **filters)
        rows.extend(page)
        if len(page) < 3000:
            return rows
        offset += len(page)


@pytest.fixture(scope="module")
def week() -> CallCentre:
    """Eight days of history (a week before today, and today up to 14:30), autopilot off."""
    return CallCentre(config(queues=4, agents=16, history_days=8))


@pytest.fixture(scope="module")
def week_rows(week) -> list[dict]:
    return all_rows(week)


def is_extension(centre: CallCentre, number: str) -> bool:
    return number.isdigit() and int(number) in centre.extensions()


# ------------------------------------------------------------------------------ a week of rows


def test_it_fills_the_days_before_today_and_today_up_to_the_start(week, week_rows):
    days = Counter(row["when"][:10] for row in week_rows)
    expected = {(FIRST_DAY + timedelta(days=n)).isoformat() for n in range(8)}
    assert set(days) == expected
    assert max(epoch(row["when"]) for row in week_rows) <= START
    for day in expected:
        assert week.cdr_rows_for(date.fromisoformat(day)) == days[day]


def test_it_makes_working_days_busier_than_weekends(week_rows):
    days = Counter(row["when"][:10] for row in week_rows if row["type"] == "incoming")
    working = [days[d] for d in ("2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25")]
    weekend = [days["2026-11-21"], days["2026-11-22"]]
    assert min(working) > 1.5 * max(weekend)


def test_it_keeps_weekends_busy_when_told():
    centre = CallCentre(config(queues=4, agents=16, history_days=8, weekends=False))
    days = Counter(r["when"][:10] for r in all_rows(centre) if r["type"] == "incoming")
    weekend = days["2026-11-21"] + days["2026-11-22"]
    working = days["2026-11-24"] + days["2026-11-25"]
    assert 0.85 < weekend / working < 1.15


def test_it_writes_every_row_in_the_documented_shape(week, week_rows):
    assert [int(r["id"]) for r in week_rows] == list(range(1, len(week_rows) + 1))
    queues = {str(q) for q in week.queue_numbers()}
    for row in week_rows:
        assert all(isinstance(row[f], str) for f in ("id", "duration", "complete_duration"))
        assert int(row["complete_duration"]) >= int(row["duration"]) >= 0
        assert row["unique_id"].split(".")[0] == str(int(epoch(row["when"])))
        if row["type"] == "incoming":
            assert row["received"] in queues, row
            assert row["caller"].startswith("00") and row["caller_name"] is None
            assert row["received_name"] is None
        else:
            assert (row["type"], row["application"]) == ("outgoing", "call"), row
            assert is_extension(week, row["caller"]) and row["caller_name"]
            assert row["received"] == row["destination"] and row["received"] not in queues
            assert row["status"] in {"answered", "missed", "busy", "unauthorized"}
        if row["application"] in ("queue", "voicemail", "hangup", "playback"):
            assert row["type"] == "incoming"
        answered_by_agent = row["application"] == "queue" and row["status"] == "answered"
        if answered_by_agent:
            assert is_extension(week, row["destination"]) and row["destination_name"]
            assert int(row["duration"]) > 0
        elif row["type"] == "incoming":
            assert (row["destination"], row["destination_name"]) == (row["received"], None)
            assert not row["recording_file"]
        if row["status"] != "answered":
            assert row["duration"] == "0"
    shapes = Counter((r["type"], r["application"], r["status"]) for r in week_rows)
    assert shapes[("incoming", "queue", "answered")] > 5 * shapes[("incoming", "queue", "missed")]
    assert shapes[("incoming", "queue", "missed")] > 100
    assert shapes[("incoming", "playback", "answered")] > 100
    assert shapes[("outgoing", "call", "answered")] > 100
    playback = [r for r in week_rows if r["application"] == "playback"]
    assert all(r["duration"] == r["complete_duration"] for r in playback)
    assert {int(r["duration"]) for r in playback} <= set(range(3, 16))


def test_it_has_short_and_long_abandons(week_rows):
    waits = [
        int(r["complete_duration"])
        for r in week_rows
        if (r["application"], r["status"]) == ("queue", "missed")
    ]
    short = [w for w in waits if w <= 5]
    assert len(short) > 50 and min(short) >= 1
    assert len([w for w in waits if w >= 60]) > 50


def test_it_transfers_some_answered_calls_to_extensions_outside_the_queue(week, week_rows):
    answered = [r for r in week_rows if (r["application"], r["status"]) == ("queue", "answered")]
    outside = [r for r in answered if int(r["destination"]) not in week.members(int(r["received"]))]
    # Members answer from the queue; only a transfer hands a call to a non-member.
    assert 0.005 * len(answered) < len(outside) < 0.1 * len(answered)
    assert all(r["destination_name"] for r in outside)


def test_it_names_recordings_of_answered_calls_after_queue_caller_and_start(week_rows):
    recorded = [r for r in week_rows if r["recording_file"]]
    assert len(recorded) > 100
    for row in recorded:
        assert (row["application"], row["status"]) == ("queue", "answered")
        stamp = datetime.strptime(row["when"], "%Y-%m-%d %H:%M:%S").strftime("%Y%m%d-%H%M%S")
        assert row["recording_file"] == (
            f"q-{row['received']}-{row['caller']}-{stamp}-{row['unique_id']}.mp3"
        )


def test_it_writes_rows_in_the_order_calls_end(week_rows):
    ends = [epoch(r["when"]) + int(r["complete_duration"]) for r in week_rows]
    # Durations are whole seconds of float times: an end can read up to a second early.
    assert all(later >= earlier - 1 for earlier, later in pairwise(ends))
    late = [
        (a["when"], b["when"]) for a, b in pairwise(week_rows) if b["when"][:10] < a["when"][:10]
    ]
    assert late, "a call that started before midnight and ended after it"


def test_it_lets_callers_who_gave_up_call_again_and_get_through(week_rows):
    calls = defaultdict(list)
    for row in sorted(week_rows, key=lambda r: epoch(r["when"])):
        if row["type"] == "incoming":
            calls[row["caller"]].append(row)
    retried = answered_on_retry = 0
    for rows in calls.values():
        for gave_up, again in pairwise(rows):
            minutes = (epoch(again["when"]) - epoch(gave_up["when"])) / 60
            same_queue = again["received"] == gave_up["received"]
            if gave_up["status"] in ("missed", "busy") and minutes < 20 and same_queue:
                retried += 1
                answered_on_retry += again["status"] == "answered"
    assert retried > 100
    assert answered_on_retry > retried / 2


def test_it_counts_todays_answered_calls_for_the_members(week, week_rows):
    today = [
        r
        for r in week_rows
        if r["when"].startswith(TODAY.isoformat())
        and (r["application"], r["status"]) == ("queue", "answered")
    ]
    taken = sum(
        week.member_state(q, m)["calls_taken"]
        for q in week.queue_numbers()
        for m in week.members(q)
    )
    assert taken == len(today) > 0


# ------------------------------------------------------------------------------ live rows


def test_it_writes_busy_voicemail_and_cut_off_rows_when_nobody_answers():
    centre = CallCentre(
        config(history_days=0, call_rate=30.0, daily_curve=False, bursts=False, queues=2)
    )
    for extension in centre.extensions():
        centre.set_registered(extension, False)
    centre.advance(QUEUE_TIMEOUT + 1800)
    rows = all_rows(centre)
    shapes = Counter((r["application"], r["status"]) for r in rows)
    assert shapes[("queue", "busy")] > 0
    assert shapes[("voicemail", "answered")] > 0 and shapes[("hangup", "missed")] > 0
    for row in rows:
        assert (row["type"], row["destination"]) == ("incoming", row["received"])
        total, duration = int(row["complete_duration"]), int(row["duration"])
        if row["status"] == "busy":
            assert (duration, total) == (0, 0)
        elif row["application"] == "voicemail":
            assert total - duration == int(QUEUE_TIMEOUT) and 8 <= duration <= 45
        elif row["application"] == "hangup":
            assert (duration, total) == (0, int(QUEUE_TIMEOUT))
    numbers = Counter(r["caller"] for r in rows if r["application"] != "playback")
    assert numbers.most_common(1)[0][1] > 1, "callers who gave up called again"


def test_it_writes_a_call_across_midnight_after_the_new_days_rows():
    start = datetime(2026, 11, 27, 23, 58, tzinfo=TZ).timestamp()
    centre = CallCentre(config(history_days=0, start_time=start))
    first, second = centre.members(100)[0], centre.members(101)[0]
    before_midnight = centre.start_call(100, first, caller="00421905000001")
    centre.advance(150, live=False)  # 00:00:30
    after_midnight = centre.start_call(101, second, caller="00421905000002")
    centre.advance(30, live=False)
    centre.end_call(second)
    centre.advance(120, live=False)  # 00:03
    centre.end_call(first)
    rows = all_rows(centre)
    assert [(r["unique_id"], r["when"]) for r in rows] == [
        (after_midnight, "2026-11-28 00:00:30"),
        (before_midnight, "2026-11-27 23:58:00"),
    ]
    friday = centre.cdr_rows(date_from=date(2026, 11, 27), date_to=date(2026, 11, 27))
    assert [r["id"] for r in friday] == ["2"]
    assert (centre.cdr_rows_for(date(2026, 11, 27)), centre.cdr_rows_for(date(2026, 11, 28))) == (
        1,
        1,
    )


def test_it_keeps_one_row_for_a_transferred_call_naming_who_took_it(sim, http):
    centre = sim.centre
    first, second = centre.members(100)[0], centre.members(101)[-1]
    for extension in (first, second):
        centre.set_registered(extension, True)
    taken_before = centre.member_state(100, first)["calls_taken"]
    unique_id = centre.add_waiting_caller(100, caller="00421905777666", wait_time=12)
    centre.start_call(100, first)
    centre.advance(30, live=False)
    centre.transfer_call(first, second)
    assert centre.member_state(100, first)["calls_taken"] == taken_before + 1
    assert centre.member_state(100, first)["in_use"] is False
    legs = http.get(url(sim, "/api/call/statistics")).json()["calls"]
    agent_legs = [leg for leg in legs if leg.get("from_queue_unique_id") == unique_id]
    assert [leg["callee"] for leg in agent_legs] == [str(second)]
    rows_before = centre.cdr_count()
    centre.advance(60, live=False)
    centre.end_call(second)
    [row] = http.get(url(sim, "/api/cdr/"), params={"offset": rows_before}).json()
    assert (row["unique_id"], row["received"], row["destination"]) == (
        unique_id,
        "100",
        str(second),
    )
    assert row["destination_name"] == http.get(url(sim, f"/api/extension/{second}")).json()["name"]
    assert (row["duration"], row["complete_duration"]) == ("90", "102")  # wait 12 s unchanged
    assert centre.member_state(100, first)["calls_taken"] == taken_before + 1  # counted once


def test_it_refuses_a_transfer_without_a_call_or_to_a_busy_extension(sim):
    centre = sim.centre
    first, second = centre.members(100)[0], centre.members(101)[-1]
    for extension in (first, second):
        centre.set_registered(extension, True)
    with pytest.raises(KeyError):
        centre.transfer_call(first, second)
    centre.start_call(100, first)
    centre.start_call(101, second)
    with pytest.raises(ValueError):
        centre.transfer_call(first, second)


def test_it_writes_an_abandon_with_the_wait_a_script_gives(sim):
    unique_id = sim.centre.add_waiting_caller(100, caller="00421905000009", wait_time=40)
    sim.centre.abandon_caller(unique_id, after=2)
    [row] = sim.centre.cdr_rows(offset=sim.centre.cdr_count() - 1)
    assert (row["unique_id"], row["status"], row["duration"], row["complete_duration"]) == (
        unique_id,
        "missed",
        "0",
        "2",
    )
    assert row["when"] == datetime.fromtimestamp(START - 40, TZ).strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------------------ bending the CDR


def test_it_appends_a_late_row_under_its_own_day(sim):
    centre = sim.centre
    yesterday = date(2026, 11, 26)
    count = centre.cdr_rows_for(yesterday)
    row = centre.cdr_append(
        when=datetime(2026, 11, 26, 23, 59, 30),
        caller="00421905123123",
        received="101",
        status="missed",
        complete_duration=40,
    )
    assert int(row["id"]) == centre.cdr_count()
    assert centre.cdr_rows_for(yesterday) == count + 1
    page = centre.cdr_rows(date_from=yesterday, date_to=yesterday, offset=count)
    assert page == [row]
    assert (row["when"], row["received"], row["destination"], row["complete_duration"]) == (
        "2026-11-26 23:59:30",
        "101",
        "101",
        "40",
    )
    outgoing = centre.cdr_append(
        when=START, type="outgoing", application="call", status="answered",
        caller="201", received="00421905123123", duration=30, complete_duration=38,
    )  # fmt: skip
    assert outgoing["caller_name"] and outgoing["destination"] == "00421905123123"
    assert outgoing["destination_name"] is None


def test_it_deletes_rows_so_a_days_pages_shrink(sim_factory):
    centre = sim_factory(history_days=2).centre
    yesterday = date(2026, 11, 26)
    rows = centre.cdr_rows(date_from=yesterday, date_to=yesterday, limit=10)
    assert centre.cdr_delete_rows(ids=[int(rows[3]["id"]), 10**9]) == 1
    after = centre.cdr_rows(date_from=yesterday, date_to=yesterday, limit=9)
    assert after == rows[:3] + rows[4:]
    assert centre.cdr_find(id=int(rows[3]["id"])) is None
    total = centre.cdr_count()
    deleted = centre.cdr_delete_rows(day=yesterday)
    assert deleted > 0 and centre.cdr_rows_for(yesterday) == 0
    assert centre.cdr_count() == total - deleted
    assert centre.cdr_rows(date_from=yesterday, date_to=yesterday) == []
    assert int(centre.cdr_append(when=START)["id"]) > int(rows[-1]["id"])  # ids never reused


def test_it_shifts_a_days_rows_and_renumbers_the_later_ones(sim_factory):
    centre = sim_factory(history_days=2).centre
    yesterday, today = date(2026, 11, 26), date(2026, 11, 27)
    before_yesterday = centre.cdr_rows(date_from=yesterday, date_to=yesterday, limit=5)
    before_today = centre.cdr_rows(date_from=today, date_to=today, limit=5)
    total = centre.cdr_count()
    centre.cdr_shift(today, 2)
    assert centre.cdr_count() == total + 2
    assert centre.cdr_rows(date_from=yesterday, date_to=yesterday, limit=5) == before_yesterday
    shifted = centre.cdr_rows(date_from=today, date_to=today, limit=7)
    assert [r["id"] for r in shifted[:2]] == [
        before_today[0]["id"],
        str(int(before_today[0]["id"]) + 1),
    ]
    assert [r["unique_id"] for r in shifted[2:]] == [r["unique_id"] for r in before_today]
    assert [int(r["id"]) for r in shifted[2:]] == [int(r["id"]) + 2 for r in before_today]
    assert all(r["when"][:10] == "2026-11-27" for r in shifted[:2])
    centre.cdr_shift(today, -3)
    assert centre.cdr_rows(date_from=today, date_to=today, limit=4) == shifted[3:7]


@settings(max_examples=60, deadline=None)
@given(
    late=st.lists(st.integers(0, 3), max_size=6),
    deleted=st.lists(st.integers(1, 2500), max_size=8),
    pages=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 4)),
            st.one_of(st.none(), st.integers(0, 4)),
            st.integers(0, 1500),
            st.integers(0, 3000),
            st.booleans(),
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_it_pages_by_day_exactly_like_filtering_every_row(small_history, late, deleted, pages):
    """The per-day index answers as a scan would: rows oldest first by id within the filter."""
    centre = small_history
    for days_back in late:
        centre.cdr_append(when=START - days_back * 86400 - 3600)
    centre.cdr_delete_rows(ids=deleted)
    everything = all_rows(centre)
    first = date(2026, 11, 23)
    for start, end, offset, limit, recordings in pages:
        date_from = None if start is None else first + timedelta(days=start)
        date_to = None if end is None else first + timedelta(days=end)
        expected = [
            row
            for row in everything
            if (date_from is None or row["when"][:10] >= date_from.isoformat())
            and (date_to is None or row["when"][:10] <= date_to.isoformat())
            and (not recordings or row["recording_file"])
        ][offset : offset + limit]
        page = centre.cdr_rows(
            date_from=date_from,
            date_to=date_to,
            offset=offset,
            limit=limit,
            recordings_only=recordings,
        )
        assert page == expected


@pytest.fixture(scope="module")
def small_history() -> CallCentre:
    return CallCentre(config(queues=2, agents=6, history_days=4, call_rate=0.3))


# ------------------------------------------------------------------------------ determinism


def test_it_builds_the_same_history_for_the_same_seed_and_start():
    first = CallCentre(config(queues=2, agents=6, history_days=3, autopilot=True, seed=21))
    second = CallCentre(config(queues=2, agents=6, history_days=3, autopilot=True, seed=21))
    for centre in (first, second):
        centre.advance(900)
        centre.set_call_outcome("00421905123456", "answered")
        centre.click_to_call("200", "00421905123456")  # reception: free, never in a queue
        centre.advance(600)
    assert first.snapshot() == second.snapshot()
    later = CallCentre(
        config(queues=2, agents=6, history_days=3, autopilot=True, seed=21, start_time=START + 60)
    )
    assert later.cdr_rows(limit=50) != first.cdr_rows(limit=50)

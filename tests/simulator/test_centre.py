"""The living call centre: determinism, life over simulated time, and the scripting API."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import requests

from pbxapi.simulator import CallCentre, start_simulator
from pbxapi.simulator.__main__ import config_from_args, parse_args, parse_start

from .conftest import PASSWORD, START, TZ, USER, config, url

ROOT = Path(__file__).resolve().parents[2]


def queue_status(sim, http, queue: int) -> dict:
    return http.get(url(sim, "/api/queue/status"), params={"queue": queue}).json()


# ------------------------------------------------------------------------------ determinism


def test_same_seed_same_centre():
    first = CallCentre(config(autopilot=True, seed=11))
    second = CallCentre(config(autopilot=True, seed=11))
    first.advance(1800)
    second.advance(1800)
    assert first.snapshot() == second.snapshot()
    other = CallCentre(config(autopilot=True, seed=12))
    other.advance(1800)
    assert other.snapshot() != first.snapshot()


def test_history_fills_today_up_to_the_start(sim, http):
    rows = http.get(url(sim, "/api/cdr/")).json()
    whens = [datetime.strptime(r["when"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=TZ) for r in rows]
    assert {w.date().isoformat() for w in whens} == {"2026-11-27"}
    assert max(w.timestamp() for w in whens) <= sim.centre.now()
    taken = sum(
        m["calls_taken"]
        for q in sim.centre.queue_numbers()
        for m in queue_status(sim, http, q)["members"]
    )
    answered = [r for r in rows if r["application"] == "queue" and r["status"] == "answered"]
    assert taken == len(answered) > 0


# ------------------------------------------------------------------------------ a living centre


def test_a_busy_day_spikes_and_drains():
    """Four simulated hours from 08:00: queues fill up, callers wait and abandon, queues drain."""
    start = datetime(2026, 11, 27, 8, 0, tzinfo=TZ).timestamp()
    centre = CallCentre(config(autopilot=True, start_time=start, queues=4, agents=16, seed=3))
    first_new_row = centre.cdr_count() + 1
    waiting_samples: dict[int, list[int]] = {q: [] for q in centre.queue_numbers()}
    longest_wait = 0
    paused_seen = unregistered_seen = in_use_seen = False
    for _ in range(4 * 120):
        centre.advance(30)
        for queue in centre.queue_numbers():
            status = centre.queue_status(queue)
            waits = [int(w["wait_time"]) for w in status["waiting_calls"]]
            waiting_samples[queue].append(len(waits))
            longest_wait = max([longest_wait, *waits])
            paused_seen |= any(m["paused"] for m in status["members"])
            in_use_seen |= any(m["in_use"] for m in status["members"])
        unregistered_seen |= not all(e["is_registered"] for e in centre.extension_list())
    spiky = [q for q, samples in waiting_samples.items() if max(samples) >= 4 and 0 in samples]
    assert spiky, waiting_samples
    assert longest_wait >= 90
    assert paused_seen and unregistered_seen and in_use_seen
    new_rows = [r for r in centre.cdr_rows(offset=first_new_row - 1)]
    outcomes = Counter((r["application"], r["status"]) for r in new_rows)
    assert outcomes[("queue", "answered")] > 100
    assert 0 < outcomes[("queue", "missed")] < outcomes[("queue", "answered")] / 3
    assert outcomes[("playback", "answered")] > 0
    assert sum(n for (app, _), n in outcomes.items() if app == "call") > 0
    assert any(r["recording_file"] for r in new_rows)


def test_the_autopilot_runs_the_centre_in_real_time(sim_factory, http):
    sim = sim_factory(autopilot=True, speed=120, queues=2, agents=3, call_rate=6, daily_curve=False)
    rows_before = sim.centre.cdr_count()
    now_before = sim.centre.now()
    seen_waits: dict[str, list[int]] = {}
    deadline = time.monotonic() + 4.0  # eight simulated minutes
    while time.monotonic() < deadline:
        for queue in (100, 101):
            for waiting in queue_status(sim, http, queue)["waiting_calls"]:
                seen_waits.setdefault(waiting["unique_id"], []).append(int(waiting["wait_time"]))
        time.sleep(0.25)
    assert sim.centre.now() - now_before >= 300
    assert any(len(w) > 1 and w[-1] > w[0] for w in seen_waits.values()), "waits grow"
    new_rows = http.get(url(sim, "/api/cdr/"), params={"offset": rows_before}).json()
    statuses = {(r["application"], r["status"]) for r in new_rows}
    assert {("queue", "answered"), ("queue", "missed")} <= statuses


def test_pausing_the_autopilot_freezes_the_clock(sim_factory):
    sim = sim_factory(autopilot=True, speed=100)
    sim.centre.pause_autopilot()
    frozen = sim.centre.snapshot()
    time.sleep(0.4)
    assert sim.centre.snapshot() == frozen
    sim.centre.resume_autopilot()
    time.sleep(0.4)
    assert sim.centre.now() > frozen["now"]


# ------------------------------------------------------------------------------ scripting


def test_waiting_callers_wait_longer_as_time_passes(sim, http):
    unique_id = sim.centre.add_waiting_caller(102, caller="00421902000333", wait_time=5)
    sim.centre.advance(20, live=False)
    [waiting] = queue_status(sim, http, 102)["waiting_calls"]
    assert (waiting["unique_id"], waiting["wait_time"]) == (unique_id, "25")
    legs = http.get(url(sim, "/api/call/statistics")).json()["calls"]
    assert [(leg["unique_id"], leg["callee"], leg["status"]) for leg in legs] == [
        (unique_id, "102", "answered")
    ]


def test_start_call_takes_the_longest_waiting_caller_and_end_call_writes_the_row(sim, http):
    agent = sim.centre.members(100)[0]
    sim.centre.set_registered(agent, True)
    calls_before = sim.centre.member_state(100, agent)["calls_taken"]
    first = sim.centre.add_waiting_caller(100, caller="00421905000001", wait_time=30)
    second = sim.centre.add_waiting_caller(100, caller="00421905000002", wait_time=10)
    assert sim.centre.start_call(100, agent) == first
    assert [w["unique_id"] for w in sim.centre.waiting(100)] == [second]
    status = queue_status(sim, http, 100)
    assert next(m for m in status["members"] if m["extension"] == str(agent))["in_use"] is True

    sim.centre.advance(95, live=False)
    rows_before = sim.centre.cdr_count()
    sim.centre.end_call(agent)
    row = http.get(url(sim, f"/api/cdr/{rows_before + 1}")).json()
    assert row["unique_id"] == first
    assert (row["caller"], row["destination"], row["status"], row["application"]) == (
        "00421905000001",
        str(agent),
        "answered",
        "queue",
    )
    assert (row["duration"], row["complete_duration"]) == ("95", "125")
    member = next(
        m for m in queue_status(sim, http, 100)["members"] if m["extension"] == str(agent)
    )
    assert member["calls_taken"] == calls_before + 1
    assert member["last_call_taken_ago"] == 0 and member["in_use"] is False
    assert http.get(url(sim, "/api/call/statistics")).json()["calls_active"] == "1"  # `second`
    with pytest.raises(KeyError):
        sim.centre.end_call(agent)


def test_start_call_without_waiting_callers_creates_one(sim, http):
    agent = sim.centre.members(101)[-1]
    unique_id = sim.centre.start_call(101, agent, caller="00421233445566")
    legs = http.get(url(sim, "/api/call/statistics")).json()["calls"]
    assert [leg.get("from_queue_unique_id") for leg in legs] == [None, unique_id]
    assert legs[0]["caller"] == "00421233445566"


def test_registration_and_pause_are_visible_over_http(sim, http):
    member = sim.centre.members(101)[0]
    sim.centre.set_registered(member, False)
    assert http.get(url(sim, f"/api/extension/{member}")).json()["is_registered"] is False
    sim.centre.set_registered(member, True)
    assert http.get(url(sim, f"/api/extension/{member}")).json()["is_registered"] is True
    sim.centre.set_paused(101, member, True)
    status = queue_status(sim, http, 101)
    assert next(m for m in status["members"] if m["extension"] == str(member))["paused"] is True
    with pytest.raises(KeyError):
        sim.centre.set_paused(101, 200, True)  # reception is no member
    with pytest.raises(KeyError):
        sim.centre.members(999)


def test_clear_waiting_and_abandon(sim, http):
    kept = sim.centre.add_waiting_caller(100, wait_time=40)
    sim.centre.add_waiting_caller(101)
    sim.centre.clear_waiting(101)
    assert queue_status(sim, http, 101)["waiting_calls"] == []
    rows_before = sim.centre.cdr_count()
    sim.centre.abandon_caller(kept)
    assert queue_status(sim, http, 100)["waiting_calls"] == []
    row = http.get(url(sim, "/api/cdr/"), params={"offset": rows_before}).json()
    assert [(r["unique_id"], r["status"], r["complete_duration"]) for r in row] == [
        (kept, "missed", "40")
    ]


def test_a_stepped_caller_is_offered_rung_and_answered(sim_factory, http):
    sim = sim_factory(call_rate=0)
    for extension in sim.centre.extensions():
        sim.centre.set_registered(extension, True)
    unique_id = sim.centre.add_waiting_caller(100, caller="00421917000444")
    sim.centre.advance(1)
    legs = http.get(url(sim, "/api/call/statistics")).json()["calls"]
    ringing = [leg for leg in legs if leg.get("from_queue_unique_id") == unique_id]
    assert [leg["status"] for leg in ringing] == ["ringing"]
    agent = int(ringing[0]["callee"])
    assert agent in sim.centre.members(100)
    for _ in range(120):  # rings a few seconds; an agent who does not answer passes it on
        sim.centre.advance(1)
        if not sim.centre.waiting(100):
            break
    legs = http.get(url(sim, "/api/call/statistics")).json()["calls"]
    assert [leg["status"] for leg in legs] == ["answered", "answered"]
    assert legs[0]["unique_id"] == legs[1]["from_queue_unique_id"] == unique_id


# ------------------------------------------------------------------------------ command line


def test_command_line_prints_where_it_listens_without_the_password():
    env = {**os.environ, "SIM_TEST_SECRET": PASSWORD}
    command = [
        sys.executable, "-m", "pbxapi.simulator", "--port", "0", "--user", USER,
        "--password-env", "SIM_TEST_SECRET", "--no-autopilot", "--queues", "2", "--agents", "5",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert PASSWORD not in line and USER in line
        assert "[100, 101]" in line
        match = re.search(r"http://[\d.]+:\d+/", line)
        assert match, line
        response = requests.get(match.group(0) + "api/queue/", auth=(USER, PASSWORD), timeout=5)
        assert [q["queue"] for q in response.json()] == ["100", "101"]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_command_line_history_days_are_days_before_today_plus_today():
    def history_days(*argv: str) -> int:
        return config_from_args(parse_args(list(argv))).history_days

    assert history_days() == 8  # a week before today, and today
    assert history_days("--history-days", "0") == 1
    assert history_days("--history-days", "30") == 31
    assert history_days("--no-history") == 0
    for refused in (["--history-days", "-1"], ["--history-days", "3", "--no-history"]):
        with pytest.raises(SystemExit):
            parse_args(refused)


def test_command_line_sets_the_volume_and_busy_weekends():
    config = config_from_args(parse_args(["--calls-per-day", "720", "--busy-weekends"]))
    assert (config.call_rate, config.weekends) == (0.5, False)
    assert config_from_args(parse_args(["--call-rate", "2"])).call_rate == 2.0
    with pytest.raises(SystemExit):
        parse_args(["--call-rate", "2", "--calls-per-day", "100"])


def test_command_line_refuses_an_empty_password_variable():
    env = {k: v for k, v in os.environ.items() if k != "SIM_TEST_UNSET"}
    result = subprocess.run(
        [sys.executable, "-m", "pbxapi.simulator", "--password-env", "SIM_TEST_UNSET"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "SIM_TEST_UNSET" in result.stderr


def test_concurrent_readers_see_consistent_snapshots(sim_factory):
    """Many clients while the ticker runs fast: every answer is whole and self-consistent."""
    sim = sim_factory(autopilot=True, speed=300, queues=2, agents=4, call_rate=5)
    problems: list[str] = []

    def reader() -> None:
        with requests.Session() as session:
            session.auth = (USER, PASSWORD)
            for _ in range(25):
                stats = session.get(url(sim, "/api/call/statistics"), timeout=5).json()
                if int(stats["calls_active"]) != len(stats["calls"]):
                    problems.append(
                        f"calls_active {stats['calls_active']} != {len(stats['calls'])}"
                    )
                agent_legs = [c for c in stats["calls"] if "from_queue_unique_id" in c]
                callee = [c["callee"] for c in agent_legs]
                if len(callee) != len(set(callee)):
                    problems.append(f"an agent on two queue calls: {callee}")
                status = session.get(
                    url(sim, "/api/queue/status"), params={"queue": 100}, timeout=5
                ).json()
                ids = [w["unique_id"] for w in status["waiting_calls"]]
                if len(ids) != len(set(ids)):
                    problems.append(f"a caller waiting twice: {ids}")

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert problems == []
    assert len(sim.requests_log) == 4 * 25 * 2
    assert {entry.status for entry in sim.requests_log} == {200}


def test_staffing_follows_the_hour_and_scripts_override_shifts():
    def centre_at(hour: int) -> CallCentre:
        start = datetime(2026, 11, 27, hour, 0, tzinfo=TZ).timestamp()
        return CallCentre(config(autopilot=True, start_time=start, queues=4, agents=16))

    def registered(centre: CallCentre) -> set[int]:
        return {int(e["extension"]) for e in centre.extension_list() if e["is_registered"]}

    night, morning = centre_at(4), centre_at(10)
    assert len(registered(night)) < len(registered(morning)) - 4
    for queue in night.queue_numbers():  # a night shift, but no queue left without an agent
        assert set(night.members(queue)) & registered(night)
    off_duty = next(e for e in night.extensions() if e not in registered(night))
    night.set_registered(off_duty, True)
    night.advance(1800)
    assert off_duty in registered(night)


def test_stop_ends_every_thread_and_closes_the_port(http):
    # Only this simulator's threads: other tests' simulators and servers may still have
    # threads of their own winding down in this process.
    before = set(threading.enumerate())
    port: list[int] = []

    def simulator_threads() -> list[str]:
        ours = ("pbx-sim", "pbx-sim-http", f"pbx-sim-{port[0]}-request")
        return [t.name for t in threading.enumerate() if t not in before and t.name in ours]

    with start_simulator(config(autopilot=True, speed=50)) as sim:
        port.append(sim.port)
        for _ in range(3):
            assert http.get(url(sim, "/api/queue/")).ok  # a keep-alive connection stays open
        assert simulator_threads()
    deadline = time.monotonic() + 5
    while simulator_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert simulator_threads() == []
    with pytest.raises(requests.ConnectionError):
        http.get(url(sim, "/api/queue/"), timeout=2)


def test_ending_a_ringing_call_by_script_puts_the_caller_back(sim_factory, http):
    sim = sim_factory(call_rate=0, seed=8)
    for extension in sim.centre.extensions():
        sim.centre.set_registered(extension, True)
    unique_id = sim.centre.add_waiting_caller(101)
    sim.centre.advance(1)
    [ringing] = [w["offered_to"] for w in sim.centre.waiting(101)]
    assert sim.centre.member_state(101, ringing)["state"] == "ringing"
    sim.centre.end_call(ringing)
    assert sim.centre.waiting(101)[0]["unique_id"] == unique_id
    assert sim.centre.waiting(101)[0]["offered_to"] is None
    state = sim.centre.member_state(101, ringing)
    assert (state["state"], state["paused"], state["in_use"]) == ("idle", False, False)


def test_start_at_sets_the_simulated_clock():
    before = datetime.now(TZ).date()
    ten = datetime.fromtimestamp(parse_start("10:00"), TZ)
    assert (ten.hour, ten.minute) == (10, 0)
    assert ten.date() in {before, datetime.now(TZ).date()}  # today, even across midnight
    assert parse_start("2026-11-27T14:30") == START
    with pytest.raises(argparse.ArgumentTypeError):
        parse_start("half past ten")

"""Click-to-call (`call/create`): the agent's phone rings, the PBX dials, the CDR records the
outcome; whatever happens the PBX answers "Call queued"; the scripting API logs and steers it."""

from __future__ import annotations

import pytest

from .conftest import START, url

NUMBER = "00421905123456"
QUEUED = {"code": "200", "message": "Call queued"}


@pytest.fixture
def agent(sim) -> int:
    """A registered, free agent (no history rows, so every row is this test's)."""
    extension = sim.centre.members(100)[0]
    sim.centre.set_registered(extension, True)
    return extension


@pytest.fixture
def sim(sim_factory):
    """No history and no callers: every row and leg is the test's."""
    return sim_factory(history_days=0, call_rate=0)


def call_create(sim, http, caller, destination) -> dict:
    params = {"caller": caller, "destination": destination}
    return http.get(url(sim, "/api/call/create"), params=params).json()


def legs(sim, http) -> list[tuple[str, str, str]]:
    calls = http.get(url(sim, "/api/call/statistics")).json()["calls"]
    return [(c["caller"], c["callee"], c["status"]) for c in calls]


def in_use(sim, extension: int) -> bool:
    queue = next(q for q in sim.centre.queue_numbers() if extension in sim.centre.members(q))
    return sim.centre.member_state(queue, extension)["in_use"]


def rows(sim, http) -> list[dict]:
    """Rows of the calls click-to-call placed (agents' own calls may happen while time runs)."""
    placed = {entry["unique_id"] for entry in sim.centre.call_create_log()}
    return [r for r in http.get(url(sim, "/api/cdr/")).json() if r["unique_id"] in placed]


def test_it_rings_the_agent_then_dials_and_records_an_answered_call(sim, http, agent):
    sim.centre.set_call_outcome(NUMBER, "answered")
    assert call_create(sim, http, agent, NUMBER) == QUEUED
    assert legs(sim, http) == [(str(agent), NUMBER, "ringing")]
    assert in_use(sim, agent)
    # The agent picks up after 2-6 s, the number answers 3-12 s later: answered at 5-18 s.
    sim.centre.advance(2)
    assert legs(sim, http) == [(str(agent), NUMBER, "ringing")]
    sim.centre.advance(16)
    assert legs(sim, http) == [(str(agent), NUMBER, "answered")]
    sim.centre.advance(1)  # a talk lasts 15 s at least: still talking
    sim.centre.end_call(agent)
    assert legs(sim, http) == [] and not in_use(sim, agent)
    [row] = rows(sim, http)
    [logged] = sim.centre.call_create_log()
    assert row["unique_id"] == logged["unique_id"]
    assert (row["type"], row["application"], row["status"]) == ("outgoing", "call", "answered")
    assert (row["caller"], row["received"], row["destination"]) == (str(agent), NUMBER, NUMBER)
    assert row["caller_name"] and row["destination_name"] is None
    assert row["when"][11:] == "14:30:00" and row["recording_file"] == ""
    duration, total = int(row["duration"]), int(row["complete_duration"])
    assert 1 <= duration <= 14 and total == 19  # the agent's ring, the number's and the talk
    # "Did this number get through?" from the CDR alone:
    assert [r for r in rows(sim, http) if r["destination"] == NUMBER and r["status"] == "answered"]


def test_an_answered_call_ends_by_itself_on_the_autopilot(sim, http, agent):
    sim.centre.set_call_outcome(NUMBER, "answered")
    call_create(sim, http, agent, NUMBER)
    sim.centre.advance(1800 + 20)  # the longest talk and both rings
    [row] = rows(sim, http)
    assert row["status"] == "answered" and int(row["duration"]) >= 15
    assert not in_use(sim, agent)


@pytest.mark.parametrize(
    ("outcome", "rings"),
    [("missed", 25), ("busy", 2), ("unauthorized", 2)],
)
def test_it_records_a_number_that_does_not_answer(sim, http, agent, outcome, rings):
    sim.centre.set_call_outcome(NUMBER, outcome)
    call_create(sim, http, agent, NUMBER)
    sim.centre.advance(6 + rings)
    assert legs(sim, http) == [] and not in_use(sim, agent)
    [row] = rows(sim, http)
    assert (row["status"], row["duration"], row["destination"]) == (outcome, "0", NUMBER)
    assert rings + 2 <= int(row["complete_duration"]) <= rings + 7


def test_an_agent_who_does_not_pick_up_leaves_no_row(sim, http, agent):
    sim.centre.set_call_outcome(NUMBER, "agent_missed")
    call_create(sim, http, agent, NUMBER)
    sim.centre.advance(19)
    assert legs(sim, http) == [(str(agent), NUMBER, "ringing")]
    sim.centre.advance(1)
    assert legs(sim, http) == [] and not in_use(sim, agent)
    sim.centre.advance(60)
    assert rows(sim, http) == []
    assert sim.centre.call_create_log()[0]["unique_id"] is not None


def test_calling_a_colleague_rings_their_extension(sim, http, agent):
    colleague = next(e for e in sim.centre.members(101) if e != agent)
    sim.centre.set_registered(colleague, True)
    sim.centre.set_call_outcome(str(colleague), "answered")
    call_create(sim, http, agent, colleague)
    assert not in_use(sim, colleague)  # the PBX dials only after the agent picks up
    sim.centre.advance(6)
    assert in_use(sim, colleague)
    sim.centre.advance(13)  # answered by 18 s, talking at least until 20 s
    sim.centre.end_call(agent)
    assert not in_use(sim, agent) and not in_use(sim, colleague)
    [row] = rows(sim, http)
    name = http.get(url(sim, f"/api/extension/{colleague}")).json()["name"]
    assert (row["destination"], row["destination_name"], row["status"]) == (
        str(colleague),
        name,
        "answered",
    )


def test_a_colleague_on_another_call_is_busy(sim, http, agent):
    colleague = next(e for e in sim.centre.members(101) if e != agent)
    sim.centre.set_registered(colleague, True)
    sim.centre.start_call(101, colleague)
    sim.centre.set_call_outcome(str(colleague), "answered")
    call_create(sim, http, agent, colleague)
    sim.centre.advance(10)
    [row] = rows(sim, http)
    assert (row["destination"], row["status"], row["duration"]) == (str(colleague), "busy", "0")


@pytest.mark.parametrize(
    ("caller", "destination"),
    [
        ("999", NUMBER),  # no such extension
        ("MEMBER", "+421905123456"),  # not digits: the PBX cannot dial it
        ("MEMBER", "09051 23456"),
        ("MEMBER", "1" * 21),
        ("MEMBER", "SCRIPTED"),  # a number scripted "invalid"
        ("MEMBER", "SELF"),
        ("abc", NUMBER),
        ("UNREGISTERED", NUMBER),
        ("BUSY", NUMBER),
    ],
)
def test_nothing_happens_for_a_call_the_pbx_cannot_place(sim, http, agent, caller, destination):
    centre = sim.centre
    centre.set_call_outcome("0233009999", "invalid")
    substitutes = {"MEMBER": str(agent), "SCRIPTED": "0233009999", "SELF": str(agent)}
    if caller == "UNREGISTERED":
        centre.set_registered(agent, False)
    if caller == "BUSY":
        centre.start_call(100, agent)
    caller = substitutes.get(caller, str(agent) if caller in ("UNREGISTERED", "BUSY") else caller)
    destination = substitutes.get(destination, destination)
    busy_legs = legs(sim, http)
    assert call_create(sim, http, caller, destination) == QUEUED
    assert legs(sim, http) == busy_legs
    centre.advance(60)
    assert [r for r in rows(sim, http) if r["type"] == "outgoing"] == []
    assert centre.call_create_log() == [
        {"at": START, "caller": caller, "destination": destination, "unique_id": None}
    ]


def test_it_logs_every_request_with_its_time(sim, http, agent):
    sim.centre.set_call_outcome(NUMBER, "busy")
    call_create(sim, http, agent, NUMBER)
    sim.centre.advance(30)
    call_create(sim, http, 999, "0905000111")
    log = sim.centre.call_create_log()
    assert [(e["at"], e["caller"], e["destination"]) for e in log] == [
        (START, str(agent), NUMBER),
        (START + 30, "999", "0905000111"),
    ]
    assert log[0]["unique_id"] and log[1]["unique_id"] is None
    log.clear()  # a copy
    assert len(sim.centre.call_create_log()) == 2


def test_it_refuses_an_unknown_outcome(sim):
    with pytest.raises(ValueError):
        sim.centre.set_call_outcome(NUMBER, "maybe")
    sim.centre.set_call_outcome(NUMBER, "busy")
    sim.centre.set_call_outcome(NUMBER, None)  # random again

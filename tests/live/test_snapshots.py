"""Snapshot building: member states, `since` tracking across polls, and what counts as a change."""

from __future__ import annotations

import pytest

from wallboard.live.snapshots import (
    agent_leg,
    iso,
    member_state,
    snapshot_build,
    snapshot_differs,
    status_with_actions,
)

T0 = 1_764_320_000.0


def _status(*, fetched, members=(), waiting=()):
    return {"queue": 100, "fetched": fetched, "members": list(members), "waiting": list(waiting)}


def _member(extension, *, paused=False, in_use=False, last_ago=None):
    return {
        "extension": extension,
        "calls_taken": 0,
        "last_call_taken_ago": last_ago,
        "paused": paused,
        "in_use": in_use,
    }


def _leg(unique_id, *, caller, callee, status="answered", origin=None, duration=0):
    return {
        "caller": caller,
        "caller_name": None,
        "callee": callee,
        "duration": duration,
        "unique_id": unique_id,
        "status": status,
        "from_queue_unique_id": origin,
    }


def _build(status, *, calls=None, extensions=None, previous=None, now=None):
    return snapshot_build(
        queue=100,
        name="Sales",
        status=status,
        calls=calls,
        extensions=extensions,
        queue_list_fetched=None,
        previous=previous,
        now=now or status["fetched"],
    )


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        ({"paused": False, "in_use": False, "registered": True, "talking": False}, "available"),
        ({"paused": False, "in_use": True, "registered": True, "talking": False}, "ringing"),
        ({"paused": True, "in_use": True, "registered": True, "talking": True}, "on_call"),
        ({"paused": True, "in_use": False, "registered": True, "talking": False}, "paused"),
        ({"paused": False, "in_use": False, "registered": False, "talking": False}, "offline"),
    ],
)
def test_it_derives_member_state(flags, state):
    assert member_state(**flags) == state


def test_it_finds_agent_legs_but_not_ringing_ones():
    caller_leg = _leg("1.1", caller="00421900", callee="100")
    ringing = _leg("1.2", caller="00421900", callee="201", status="ringing", origin="1.1")
    talking = _leg("1.3", caller="00421900", callee="202", origin="1.1")
    direct = _leg("1.4", caller="203", callee="0905", status="answered")
    legs = [caller_leg, ringing, talking, direct]
    assert agent_leg(legs, 201) is None
    assert agent_leg(legs, 202) is talking
    assert agent_leg(legs, 203) is direct


def test_it_builds_a_snapshot_with_peer_names_counts_and_waiting_since():
    status = _status(
        fetched=T0,
        members=[_member(202), _member(201, in_use=True)],
        waiting=[{"unique_id": "9.1", "caller": "0042190", "caller_name": None, "wait_time": 30}],
    )
    calls = {"fetched": T0, "legs": [
        _leg("1.1", caller="00421911", callee="100"),
        _leg("1.2", caller="00421911", callee="201", origin="1.1", duration=12),
    ]}  # fmt: skip
    extensions = {"fetched": T0 - 5, "by_extension": {
        "201": {"name": "Jana", "registered": True}, "202": {"name": "Peter", "registered": False},
    }}  # fmt: skip
    snapshot = _build(status, calls=calls, extensions=extensions)
    by_ext = {m["extension"]: m for m in snapshot["members"]}
    assert [m["extension"] for m in snapshot["members"]] == [201, 202]
    assert by_ext[201]["state"] == "on_call"
    assert by_ext[201]["name"] == "Jana"
    assert by_ext[201]["call"] == {"peer": "00421911", "since": iso(T0 - 12), "unique_id": "1.2"}
    assert by_ext[202]["state"] == "offline"
    assert snapshot["counts"] == {
        "waiting": 1, "members": 2, "available": 0, "ringing": 0, "on_call": 1, "paused": 0,
        "offline": 1,
    }  # fmt: skip
    assert snapshot["waiting"][0]["since"] == iso(T0 - 30)
    assert snapshot["longest_wait"] == 30
    assert snapshot["longest_wait_since"] == iso(T0 - 30)
    assert snapshot["fetched"]["extensions"] == iso(T0 - 5)


def test_it_keeps_state_since_while_the_state_holds_and_resets_it_on_change():
    first = _build(_status(fetched=T0, members=[_member(201)]))
    first["version"] = 1
    assert first["members"][0]["state_since"] == iso(T0)

    same = _build(_status(fetched=T0 + 3, members=[_member(201)]), previous=first)
    assert same["members"][0]["state_since"] == iso(T0)

    paused = _build(_status(fetched=T0 + 6, members=[_member(201, paused=True)]), previous=same)
    assert paused["members"][0]["state"] == "paused"
    assert paused["members"][0]["state_since"] == iso(T0 + 6)


def test_it_pins_a_waiting_callers_since_although_wait_time_rounding_wobbles():
    waiting = {"unique_id": "9.1", "caller": "0042190", "caller_name": None, "wait_time": 10}
    first = _build(_status(fetched=T0 + 0.9, waiting=[waiting]))
    # 2.2 s later the PBX says 12 s (rounded): a recomputed since would move by a second.
    later = _build(
        _status(fetched=T0 + 3.1, waiting=[{**waiting, "wait_time": 12}]), previous=first
    )
    assert later["waiting"][0]["since"] == first["waiting"][0]["since"]


def test_it_ignores_growing_waits_and_fetch_times_but_not_real_changes():
    waiting = {"unique_id": "9.1", "caller": "0042190", "caller_name": None, "wait_time": 10}
    first = _build(_status(fetched=T0, members=[_member(201, last_ago=5)], waiting=[waiting]))
    later = _build(
        _status(
            fetched=T0 + 4,
            members=[_member(201, last_ago=9)],
            waiting=[{**waiting, "wait_time": 14}],
        ),
        previous=first,
    )
    assert not snapshot_differs(first, later)
    assert snapshot_differs(None, later)
    gone = _build(_status(fetched=T0 + 5, members=[_member(201)]), previous=later)
    assert snapshot_differs(later, gone)
    ringing = _build(
        _status(fetched=T0 + 5, members=[_member(201, in_use=True)], waiting=[waiting]),
        previous=later,
    )
    assert snapshot_differs(later, ringing)


def test_a_pause_the_pbx_confirmed_is_laid_over_a_status_requested_before_it():
    older = {**_status(fetched=T0 + 1, members=[_member(201), _member(202)]), "requested": T0}
    actions = {201: {"paused": True, "at": T0 + 5}, 202: {"paused": True, "at": T0 - 1}}

    shown = status_with_actions(older, actions)

    # 201: paused after the status was requested; 202: an action the status already includes.
    assert [(m["extension"], m["paused"]) for m in shown["members"]] == [(201, True), (202, False)]
    assert older["members"][0]["paused"] is False  # the stored status itself is not changed
    before = _build(older)
    after = _build(shown, previous=before, now=T0 + 5)
    member = next(m for m in after["members"] if m["extension"] == 201)
    # Paused since the PBX said so, not since the (earlier) status was fetched.
    assert (member["state"], member["state_since"]) == ("paused", iso(T0 + 5))
    assert after["fetched"]["queue_status"] == iso(T0 + 1)  # the data is as old as it is
    assert snapshot_differs(before, after)


def test_a_status_requested_after_the_action_is_the_pbxs_word():
    newer = {**_status(fetched=T0 + 11, members=[_member(201)]), "requested": T0 + 10}
    # Someone unpaused 201 at the phone after our pause: the newer status says so, and wins.
    assert status_with_actions(newer, {201: {"paused": True, "at": T0 + 5}}) is newer
    assert status_with_actions(newer, None) is newer
    # A status stored before "requested" existed counts as requested when it was fetched.
    legacy = _status(fetched=T0 + 3, members=[_member(201)])
    assert status_with_actions(legacy, {201: {"paused": True, "at": T0 + 5}})["members"][0][
        "paused"
    ]

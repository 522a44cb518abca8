from __future__ import annotations

import pytest

from wallboard.boards.templatetags.boards import (
    dash,
    duration,
    mean_duration,
    met,
    needed,
    percent,
    staffing_basis,
    state_word,
    taking_calls,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (45, "0:45"), (61, "1:01"), (3725, "1:02:05"), (None, "—"), (-1, "—")],
)
def test_duration(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(("value", "text"), [(87.4, "87 %"), (86.5, "87 %"), (0.5, "1 %"),
                                             (100.0, "100 %"), (None, "—")])  # fmt: skip
def test_percent_takes_the_live_kpi_in_percent(value, text):
    assert percent(value) == text


def test_dash_and_state_words():
    assert dash(None) == "—" and dash(0) == 0
    assert dash("") == "—"  # a figure an older snapshot does not have
    assert state_word("on_call") == "On call"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(7.4, "0:07"), (7.5, "0:08"), (0.0, "0:00"), (185.5, "3:06"), (None, "—"), ("", "—")],
)
def test_mean_duration_rounds_to_the_nearest_second(seconds, text):
    assert mean_duration(seconds) == text


HINT = {
    "needed": 14, "capped": False, "max_agents": 200, "window_seconds": 1800, "calls": 100,
    "min_calls": 10, "arrivals_per_hour": 200.0, "aht": 180.0, "traffic": 10.0,
    "target_seconds": 20, "target_percent": 80, "service_level": 88.8, "asa": 7.8,
}  # fmt: skip


def test_the_staffing_hint_in_words():
    assert needed(HINT) == "14"
    assert needed({**HINT, "needed": None, "capped": True}) == "> 200"
    assert needed({**HINT, "needed": None}) == "—"
    assert needed(None) == "—"
    assert staffing_basis(HINT) == (
        "Erlang C: 100 calls in the last 30 min, average talk 3:00, goal 80 % within 20 s"
    )
    few = {**HINT, "needed": None, "calls": 6}
    assert staffing_basis(few) == "No hint yet: 6 calls in the last 30 min (at least 10 needed)"
    nothing_answered = {**HINT, "needed": None, "aht": None}
    assert staffing_basis(nothing_answered) == "No hint yet: no call answered today"
    assert staffing_basis(None) == ""


def test_members_taking_calls_and_the_goal_met():
    counts = {"available": 2, "ringing": 1, "on_call": 3, "paused": 4, "offline": 1}
    assert taking_calls(counts) == 6
    assert taking_calls(None) == "—"
    assert (met({"service_level_met": True}), met({"service_level_met": False})) == ("yes", "no")
    assert met({"service_level_met": None}) == met(None) == ""

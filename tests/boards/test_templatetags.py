from __future__ import annotations

import pytest

from wallboard.boards.templatetags.boards import dash, duration, percent, state_word


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (45, "0:45"), (61, "1:01"), (3725, "1:02:05"), (None, "—"), (-1, "—")],
)
def test_duration(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(("value", "text"), [(87.4, "87 %"), (0.5, "0 %"), (100.0, "100 %"),
                                             (None, "—")])  # fmt: skip
def test_percent_takes_the_live_kpi_in_percent(value, text):
    assert percent(value) == text


def test_dash_and_state_words():
    assert dash(None) == "—" and dash(0) == 0
    assert state_word("on_call") == "On call"

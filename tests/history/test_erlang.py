"""The staffing hint: Erlang C against its closed form and the textbook example, stable for
large call centres, capped, and silent while the sample is too small."""

from __future__ import annotations

import math

import pytest

from wallboard.history.erlang import (
    erlang_c,
    service_level_expected,
    staffing_hint,
    staffing_needed,
)


def erlang_c_closed_form(traffic: float, agents: int) -> float:
    """C(N, A) = (A^N/N! · N/(N-A)) / (Σ_{k<N} A^k/k! + A^N/N! · N/(N-A))."""
    top = traffic**agents / math.factorial(agents) * agents / (agents - traffic)
    bottom = sum(traffic**k / math.factorial(k) for k in range(agents)) + top
    return top / bottom


@pytest.mark.parametrize(("traffic", "agents"), [(1.5, 2), (10, 11), (10, 14), (37.2, 45)])
def test_erlang_c_equals_its_closed_form(traffic, agents):
    assert erlang_c(traffic, agents) == pytest.approx(erlang_c_closed_form(traffic, agents))


def test_the_textbook_example_needs_14_agents():
    # 100 calls in 30 minutes, 3 minutes each: 10 Erlangs; 80 % within 20 s.
    hint = staffing_needed(
        arrivals_per_hour=200, aht_seconds=180, target_seconds=20, target_percent=80
    )

    assert hint.agents == 14
    assert hint.traffic == 10.0
    assert (hint.service_level, hint.wait_probability, hint.asa) == (88.8, 17.4, 7.8)
    assert service_level_expected(10, 13, aht=180, target_seconds=20) < 0.8  # 13 fall short
    assert hint.capped is False


def test_fewer_agents_than_erlangs_never_reach_the_target():
    assert erlang_c(10, 10) == 1.0
    assert service_level_expected(10, 9, aht=180, target_seconds=20) == 0.0


def test_a_large_centre_is_computed_without_overflow():
    # 600 Erlangs: 600! and 600^600 overflow a float; the recursion does not.
    hint = staffing_needed(
        arrivals_per_hour=12_000,
        aht_seconds=180,
        target_seconds=20,
        target_percent=80,
        max_agents=1000,
    )

    assert hint.agents == 610
    assert 80.0 <= hint.service_level < 82.0


def test_the_search_is_capped():
    hint = staffing_needed(
        arrivals_per_hour=12_000, aht_seconds=180, target_seconds=20, target_percent=80
    )

    assert (hint.agents, hint.capped, hint.service_level) == (None, True, None)
    assert hint.traffic == 600.0


def test_no_arrivals_need_no_agent():
    hint = staffing_needed(
        arrivals_per_hour=0, aht_seconds=180, target_seconds=20, target_percent=80
    )

    assert (hint.agents, hint.service_level) == (0, 100.0)


def test_the_hint_waits_for_enough_calls_and_an_aht():
    window = 30 * 60
    assert (
        staffing_hint(
            offered=9, window_seconds=window, aht_seconds=180, target_seconds=20, target_percent=80
        )
        is None
    )
    assert (
        staffing_hint(
            offered=50,
            window_seconds=window,
            aht_seconds=None,
            target_seconds=20,
            target_percent=80,
        )
        is None
    )

    hint = staffing_hint(
        offered=100, window_seconds=window, aht_seconds=180, target_seconds=20, target_percent=80
    )

    assert hint is not None
    assert (hint.arrivals_per_hour, hint.agents) == (200.0, 14)

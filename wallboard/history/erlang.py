"""A staffing hint: how many agents a queue needs to reach its service level (Erlang C; pure).

With arrivals λ per second, mean handle time h seconds and n agents, the offered traffic is
A = λ·h Erlangs. Erlang B comes from its recursion B(0) = 1, B(k) = A·B(k-1) / (k + A·B(k-1)),
which never forms a factorial or a power and so stays exact for any n; from it, for n > A,
the probability that a caller waits at all is C = n·B / (n - A·(1 - B)), the expected service
level is SL(T) = 1 - C·exp(-(n - A)·T/h) and the expected mean wait is C·h / (n - A).

The model's limits (docs/kpi.md, "Staffing hint"): callers never give up (abandons make the
real queue look better than the model), arrivals are steady over the window (Poisson), every
agent takes every call, and the handle time holds no wrap-up because the PBX has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The arrivals are counted over this window (the selector's default) ...
STAFFING_WINDOW_SECONDS = 30 * 60
# ... and need at least this many calls in it, or the rate is noise and no hint is given.
STAFFING_MIN_CALLS = 10
# Beyond this many agents the hint says "more than MAX" instead of searching on.
STAFFING_MAX_AGENTS = 200


@dataclass(frozen=True)
class StaffingHint:
    """The smallest number of agents that reaches the target, and what to expect with them.

    ``agents`` is None (``capped``) when even ``STAFFING_MAX_AGENTS`` would not reach it.
    """

    agents: int | None
    traffic: float  # offered load, Erlangs
    arrivals_per_hour: float
    aht: float  # seconds
    target_seconds: int
    target_percent: float
    service_level: float | None  # expected, percent, with ``agents``
    wait_probability: float | None  # expected share of callers who wait at all, percent
    asa: float | None  # expected mean wait, seconds
    capped: bool


def erlang_c(traffic: float, agents: int) -> float:
    """The probability that a caller has to wait (0..1); 1 when ``agents`` <= ``traffic``."""
    if agents <= traffic:
        return 1.0
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = traffic * blocking / (k + traffic * blocking)
    return agents * blocking / (agents - traffic * (1.0 - blocking))


def service_level_expected(
    traffic: float, agents: int, *, aht: float, target_seconds: float
) -> float:
    """The share of callers answered within ``target_seconds`` with ``agents`` (0..1)."""
    if agents <= traffic:
        return 0.0
    waits = erlang_c(traffic, agents)
    return 1.0 - waits * math.exp(-(agents - traffic) * target_seconds / aht)


def staffing_needed(
    *,
    arrivals_per_hour: float,
    aht_seconds: float,
    target_seconds: int,
    target_percent: float,
    max_agents: int = STAFFING_MAX_AGENTS,
) -> StaffingHint:
    """The smallest number of agents whose expected service level reaches ``target_percent``.

    One pass of the Erlang B recursion from 1 agent up serves every candidate, so the search
    costs O(agents). Raises ``ValueError`` for a handle time that is not positive.
    """
    if aht_seconds <= 0:
        raise ValueError("the handle time must be positive")
    traffic = arrivals_per_hour / 3600.0 * aht_seconds
    goal = target_percent / 100.0
    base = {
        "traffic": round(traffic, 2),
        "arrivals_per_hour": round(arrivals_per_hour, 1),
        "aht": round(aht_seconds, 1),
        "target_seconds": target_seconds,
        "target_percent": target_percent,
    }
    if traffic <= 0:
        return StaffingHint(
            agents=0, service_level=100.0, wait_probability=0.0, asa=0.0, capped=False, **base
        )
    blocking = 1.0
    for agents in range(1, max_agents + 1):
        blocking = traffic * blocking / (agents + traffic * blocking)
        if agents <= traffic:
            continue  # the queue would grow without end
        waits = agents * blocking / (agents - traffic * (1.0 - blocking))
        level = 1.0 - waits * math.exp(-(agents - traffic) * target_seconds / aht_seconds)
        if level >= goal:
            return StaffingHint(
                agents=agents,
                service_level=round(100.0 * level, 1),
                wait_probability=round(100.0 * waits, 1),
                asa=round(waits * aht_seconds / (agents - traffic), 1),
                capped=False,
                **base,
            )
    return StaffingHint(
        agents=None, service_level=None, wait_probability=None, asa=None, capped=True, **base
    )


def staffing_hint(
    *,
    offered: int,
    window_seconds: float,
    aht_seconds: float | None,
    target_seconds: int,
    target_percent: float,
    min_calls: int = STAFFING_MIN_CALLS,
    max_agents: int = STAFFING_MAX_AGENTS,
) -> StaffingHint | None:
    """The hint from ``offered`` calls that arrived in the last ``window_seconds`` and the
    day's AHT; None while the sample is too small (fewer than ``min_calls``) or no call has been
    answered yet (no AHT)."""
    if offered < min_calls or not aht_seconds or aht_seconds <= 0 or window_seconds <= 0:
        return None
    return staffing_needed(
        arrivals_per_hour=offered * 3600.0 / window_seconds,
        aht_seconds=aht_seconds,
        target_seconds=target_seconds,
        target_percent=target_percent,
        max_agents=max_agents,
    )

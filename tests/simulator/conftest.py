"""Fixtures for the simulator's own tests: a frozen simulator at a fixed simulated moment,
and plain `requests` helpers (the simulator is tested without the team's client)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from pbxapi.simulator import SimulatorConfig, SimulatorHandle, start_simulator

USER = "sim-user"
PASSWORD = "sim-pass-4b1e"
TZ = ZoneInfo("Europe/Bratislava")
# Friday 27 November 2026, 14:30 in Bratislava: mid-afternoon, with today's history behind it.
START = datetime(2026, 11, 27, 14, 30, tzinfo=TZ).timestamp()


def config(**overrides: Any) -> SimulatorConfig:
    values: dict[str, Any] = {
        "port": 0,
        "seed": 5,
        "queues": 3,
        "agents": 8,
        "user": USER,
        "password": PASSWORD,
        "start_time": START,
        "autopilot": False,
        "fault_delay": 1.0,
        "rate_limit": 1000,  # route tests test routes; the limiter's tests set their own
        **overrides,
    }
    return SimulatorConfig(**values)


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimulatorHandle]]:
    """Start simulators with `config(**overrides)`; all stopped at teardown."""
    started: list[SimulatorHandle] = []

    def start(**overrides: Any) -> SimulatorHandle:
        handle = start_simulator(config(**overrides))
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def sim(sim_factory) -> SimulatorHandle:
    """A simulator whose centre changes only through the test's script and API actions."""
    return sim_factory()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.auth = (USER, PASSWORD)
    yield session
    session.close()


def url(sim: SimulatorHandle, path: str) -> str:
    return sim.url + path.lstrip("/")

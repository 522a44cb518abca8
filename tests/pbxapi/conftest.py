"""Fixtures for the pbxapi tests: a canned-response HTTP server (the PBX boundary), the
simulator, and Redis keys that are unique per test and removed afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from pbx_testing import GENEROUS_LIMIT, PASSWORD, SIM_PASSWORD, SIM_USER, USER, CannedPBX

from pbxapi.budget import LocalBudget, RedisBudget
from pbxapi.client import PBXClient
from pbxapi.simulator import SimulatorConfig, start_simulator


@pytest.fixture
def canned() -> Iterator[CannedPBX]:
    server = CannedPBX()
    yield server
    server.stop()


@pytest.fixture
def budget() -> LocalBudget:
    return LocalBudget(
        requests=100, window=1.0, reserve=2, block_seconds=60, pbx_limit=GENEROUS_LIMIT
    )


@pytest.fixture
def client(canned: CannedPBX, budget: LocalBudget) -> Iterator[PBXClient]:
    with PBXClient(
        canned.url, USER, PASSWORD, budget=budget, connect_timeout=1.0, read_timeout=0.5
    ) as pbx:
        yield pbx


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    connection = redis.Redis(host="127.0.0.1", port=6379, db=0)
    yield connection
    connection.close()


@pytest.fixture
def budget_key(redis_client: redis.Redis) -> Iterator[str]:
    """A budget key of this test's own, declared unused (no cold start; see RedisBudget)."""
    key = f"test-pbxapi:{uuid.uuid4().hex}:pbx-budget"
    RedisBudget(redis_client, key=key).declare_unused()
    yield key
    for found in redis_client.scan_iter(match=f"{key}*"):
        redis_client.delete(found)


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    """A quiet simulator (no autopilot) with the rate limit out of the way for contract tests."""
    handle = start_simulator(
        SimulatorConfig(
            port=0,
            seed=7,
            queues=3,
            agents=8,
            user=SIM_USER,
            password=SIM_PASSWORD,
            autopilot=False,
            rate_limit=100_000,
            fault_delay=3.0,
        )
    )
    yield handle
    handle.centre.set_fault(None)
    handle.stop()


@pytest.fixture
def sim_client(sim: Any) -> Iterator[PBXClient]:
    sim.centre.set_fault(None)
    budget = LocalBudget(
        requests=1000, window=1.0, reserve=2, block_seconds=60, pbx_limit=GENEROUS_LIMIT
    )
    with PBXClient(
        sim.url, SIM_USER, SIM_PASSWORD, budget=budget, connect_timeout=1.0, read_timeout=1.0
    ) as pbx:
        yield pbx
    sim.centre.set_fault(None)

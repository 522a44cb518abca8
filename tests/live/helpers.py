"""Small helpers for the live tests (waiting for conditions, reading the simulator's log)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from wallboard.live import poller


def wait_for(condition: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def ticks(count: int, *, seconds: float = 0.3) -> list[poller.TickReport]:
    """Run ``count`` poll ticks back to back, as beat would."""
    return [poller.poll_tick(seconds=seconds) for _ in range(count)]


def poll_until(condition: Callable[[], Any], *, timeout: float = 10.0, seconds: float = 0.3):
    """Tick the poller until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        poller.poll_tick(seconds=seconds)
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s of polling")


def pbx_paths(sim, since: int = 0) -> list[str]:
    """Paths the simulator was asked for (from index ``since`` of its request log)."""
    return [entry[3] for entry in list(sim.requests_log)[since:]]

"""The data path with real processes: a Celery worker running the poll task, and the whole chain
simulator → worker with beat → Redis → Daphne → a websocket client over a real socket."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import websockets

from wallboard.live import selectors, tasks

from .helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


# No database mark: the poll task never touches the database (pytest-django refuses it).
def test_a_real_worker_polls_the_simulator(simulator, celery_worker):
    queues = simulator.centre.queue_numbers()

    def ticked_until_built() -> bool:
        tasks.poll.apply_async(queue=celery_worker.queue, expires=2)
        time.sleep(0.5)
        return all(selectors.snapshot_get(queue=q) for q in queues)

    wait_for(ticked_until_built, timeout=20, interval=0)
    assert selectors.pbx_state_get()["state"] == "ok"
    assert any(path == "/api/call/statistics" for _at, _ip, _m, path, _s in simulator.requests_log)


def _kiosk_secret(file_database: str) -> str:
    """A kiosk token in the shared file database, made the way an operator makes one."""
    result = subprocess.run(
        [sys.executable, "manage.py", "kiosk_token", "create", f"tv-{uuid.uuid4().hex[:8]}"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": file_database},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip().rstrip("/").rsplit("/", 1)[-1]


async def _next(ws, kind: str, *, timeout: float, where=lambda m: True) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind} message within {timeout} s")
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=left))
        if message["type"] == kind and where(message):
            return message


async def test_a_change_reaches_a_tv_over_daphne_from_the_beat_driven_worker(
    simulator, celery_beat_process, daphne_server, file_database, live_settings
):
    live_settings.WS_HEARTBEAT_SECONDS = 1.0
    queue = simulator.centre.queue_numbers()[0]
    secret = await asyncio.to_thread(_kiosk_secret, file_database)
    address = await asyncio.to_thread(daphne_server)
    celery_beat_process(DATABASE_URL=file_database)

    url = f"ws://{address}/ws/kiosk/{secret}/"
    async with websockets.connect(url, origin=f"http://{address}") as ws:
        hello = await _next(ws, "hello", timeout=10)
        assert hello["heartbeat"] == 1.0
        # The worker's beat starts polling by itself; the TV gets the queue as soon as it exists.
        first = await _next(ws, "snapshot", timeout=30, where=lambda m: m["queue"] == queue)
        assert first["data"]["counts"]["waiting"] == 0

        await asyncio.to_thread(simulator.centre.add_waiting_caller, queue, caller="00421905000077")
        changed = await _next(
            ws, "snapshot", timeout=10,
            where=lambda m: m["queue"] == queue and m["data"]["counts"]["waiting"] == 1,
        )  # fmt: skip
        assert changed["version"] > first["version"]
        assert changed["data"]["waiting"][0]["caller"] == "00421905000077"
        beat = await _next(ws, "heartbeat", timeout=5)
        assert beat["fresh_at"]

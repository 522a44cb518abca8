"""A slow PBX answer to one supervisor's action must not stall anyone else on the same Daphne:
the action's PBX request runs on a thread of its own, not on Channels' one database thread that
every socket's connect and re-check share.

A real Daphne process; the PBX is the simulator behind a small HTTP relay (the seam every test
mocks at) that holds one extension's pause for five seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import websockets

from tests.live.helpers import poll_until
from wallboard.live import selectors

ROOT = Path(__file__).resolve().parents[2]
SLOW_SECONDS = 5.0

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class SlowRelay:
    """Forwards every request to the simulator; a pause of ``slow_extension`` waits first."""

    def __init__(self, target: str, slow_extension: int) -> None:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                if self.path.startswith("/api/queue/pause") and query.get("extension") == [
                    str(relay.slow_extension)
                ]:
                    time.sleep(SLOW_SECONDS)
                answer = requests.get(
                    target.rstrip("/") + self.path,
                    headers={"Authorization": self.headers.get("Authorization", "")},
                    timeout=10,
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format, *args) -> None:
                pass

        self.slow_extension = slow_extension
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _session_cookie(file_database: str) -> str:
    """An admin logged in through Django's own machinery, in the database Daphne reads."""
    script = (
        "from django.contrib.auth import get_user_model; from django.test import Client; "
        "import uuid; name = 'slow-' + uuid.uuid4().hex[:8]; "
        "user = get_user_model().objects.create_superuser(name, password='pw-' + name); "
        "client = Client(); client.force_login(user); "
        "print(client.cookies['sessionid'].value)"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": file_database},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip().splitlines()[-1]


async def _next(ws, kind: str, *, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind} message within {timeout} s")
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=left))
        if message["type"] == kind:
            return message


async def test_a_slow_action_does_not_stall_another_socket_on_the_same_daphne(
    simulator, daphne_server, file_database, live_settings
):
    queue = simulator.centre.queue_numbers()[0]
    slow, fast = simulator.centre.members(queue)[:2]
    # The boards' data is in Redis already (Daphne never asks the PBX for it).
    await asyncio.to_thread(poll_until, lambda: selectors.snapshot_get(queue=queue))
    relay = SlowRelay(simulator.url, slow_extension=slow)
    try:
        live_settings.PBX_BASE_URL = relay.url
        live_settings.PBX_READ_TIMEOUT = SLOW_SECONDS + 3
        address = await asyncio.to_thread(daphne_server)
        cookie = await asyncio.to_thread(_session_cookie, file_database)
        url = f"ws://{address}/ws/board/?queues={queue}"
        options = {
            "origin": f"http://{address}",
            "additional_headers": {"Cookie": f"sessionid={cookie}"},
        }

        async with websockets.connect(url, **options) as first:
            await _next(first, "hello", timeout=10)
            await first.send(json.dumps(
                {"type": "action", "request_id": "slow", "action": "pause", "queue": queue,
                 "extension": slow}
            ))  # fmt: skip
            await asyncio.sleep(0.5)  # the slow action is waiting on the PBX now

            started = time.monotonic()
            async with websockets.connect(url, **options) as second:
                await _next(second, "hello", timeout=SLOW_SECONDS)
                snapshot = await _next(second, "snapshot", timeout=SLOW_SECONDS)
                assert snapshot["queue"] == queue
                await second.send(json.dumps(
                    {"type": "action", "request_id": "fast", "action": "pause", "queue": queue,
                     "extension": fast}
                ))  # fmt: skip
                result = await _next(second, "action_result", timeout=SLOW_SECONDS)
                elapsed = time.monotonic() - started
            assert result["request_id"] == "fast" and result["ok"], result
            assert elapsed < 0.5, f"connect, snapshot and action took {elapsed:.2f} s"

            slow_result = await _next(first, "action_result", timeout=SLOW_SECONDS + 5)
            assert slow_result["request_id"] == "slow" and slow_result["ok"]
        assert simulator.centre.member_state(queue, slow)["paused"]
        assert simulator.centre.member_state(queue, fast)["paused"]
    finally:
        relay.stop()

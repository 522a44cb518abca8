"""Fixtures for the pbxapi tests: a canned-response HTTP server (the PBX boundary), the
simulator, and Redis keys that are unique per test and removed afterwards."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from pbxapi.budget import LocalBudget
from pbxapi.client import PBXClient
from pbxapi.simulator import SimulatorConfig, start_simulator

USER = "apiuser"
PASSWORD = "s3cret-Pa55"


@dataclass
class Canned:
    """One canned answer: status, body (bytes, or anything JSON-able) and an optional stall."""

    body: Any = b""
    status: int = 200
    content_type: str = "application/json"
    delay: float = 0.0
    body_delay: float = 0.0  # stall after the headers and half the body
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    authorization: str


class CannedPBX:
    """A tiny HTTP server answering each path with a canned response; records what it saw."""

    def __init__(self) -> None:
        self.routes: dict[str, Canned] = {}
        self.seen: list[Seen] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                canned.seen.append(
                    Seen(
                        method,
                        split.path,
                        parse_qs(split.query, keep_blank_values=True),
                        parse_qs(body, keep_blank_values=True),
                        self.headers.get("Authorization", ""),
                    )
                )
                answer = canned.routes.get(split.path, Canned({"detail": "none"}, status=404))
                if answer.delay:
                    time.sleep(answer.delay)
                payload = answer.payload()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    if "Content-Length" not in answer.headers:
                        self.send_header("Content-Length", str(len(payload)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if answer.body_delay:
                        self.wfile.write(payload[: len(payload) // 2])
                        self.wfile.flush()
                        time.sleep(answer.body_delay)
                    self.wfile.write(payload[len(payload) // 2 if answer.body_delay else 0 :])
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def answer(self, path: str, body: Any = b"", **options: Any) -> None:
        self.routes[path] = Canned(body, **options)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canned() -> Iterator[CannedPBX]:
    server = CannedPBX()
    yield server
    server.stop()


@pytest.fixture
def budget() -> LocalBudget:
    return LocalBudget(requests=100, window=1.0, reserve=2, block_seconds=60)


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
    key = f"test-pbxapi:{uuid.uuid4().hex}:pbx-budget"
    yield key
    for found in redis_client.scan_iter(match=f"{key}*"):
        redis_client.delete(found)


SIM_USER = "u"
SIM_PASSWORD = "p"


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
    budget = LocalBudget(requests=1000, window=1.0, reserve=2, block_seconds=60)
    with PBXClient(
        sim.url, SIM_USER, SIM_PASSWORD, budget=budget, connect_timeout=1.0, read_timeout=1.0
    ) as pbx:
        yield pbx
    sim.centre.set_fault(None)

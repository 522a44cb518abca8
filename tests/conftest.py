"""Shared fixtures: real Redis under a unique prefix per test, the real PBX simulator, a real
Celery worker (in a thread or as a process with beat), and a live Daphne server.

Every test gets its own Redis key prefix (snapshots, PBX state, budget, channel-layer prefix,
Celery queue), so tests running at the same time on the shared Redis never see each other.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from django.core import signals
from django.db import close_old_connections

from pbxapi.budget import RedisBudget

ROOT = Path(__file__).resolve().parent.parent

# Short windows keep the tests fast; the budget stays under the simulator's limit like in
# production (18 of 20).
TEST_BUDGET_REQUESTS = 18
TEST_WINDOW_SECONDS = 1.0
TEST_BLOCK_SECONDS = 3.0


@pytest.fixture(autouse=True)
def redis_prefix(settings) -> Iterator[str]:
    """A unique Redis key prefix for this test; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.REDIS_KEY_PREFIX = prefix
    settings.PBX_BUDGET_KEY = f"{prefix}:pbx-budget"
    settings.CELERY_TASK_DEFAULT_QUEUE = f"{prefix}-tasks"
    layers = {alias: {**conf} for alias, conf in settings.CHANNEL_LAYERS.items()}
    for conf in layers.values():
        conf["CONFIG"] = {**conf.get("CONFIG", {}), "prefix": f"{prefix}:channels"}
    settings.CHANNEL_LAYERS = layers
    connection = redis.Redis.from_url(settings.REDIS_URL)
    # Nothing ever used this budget key: no cold start (tests of the cold start undo this).
    RedisBudget(connection, key=settings.PBX_BUDGET_KEY).declare_unused()
    yield prefix
    try:
        keys = list(connection.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            connection.delete(*keys)
    finally:
        connection.close()


@pytest.fixture
def live_settings(settings):
    """Short budget window and block time for tests, PBX_* pointing nowhere until a simulator."""
    settings.PBX_BUDGET_REQUESTS = TEST_BUDGET_REQUESTS
    settings.PBX_BUDGET_WINDOW = TEST_WINDOW_SECONDS
    settings.PBX_RATE_LIMIT = (20, TEST_WINDOW_SECONDS)  # the test simulator's limit
    settings.PBX_BLOCK_SECONDS = TEST_BLOCK_SECONDS
    settings.PBX_CONNECT_TIMEOUT = 1.0
    settings.PBX_READ_TIMEOUT = 1.0
    settings.POLL_BACKOFF_BASE_SECONDS = 0.2
    settings.POLL_BACKOFF_MAX_SECONDS = 0.5
    return settings


@pytest.fixture
def simulator_factory(live_settings) -> Iterator[Callable[..., Any]]:
    """Start simulators (``SimulatorConfig`` overrides as keywords) with the autopilot off, so
    only scripted changes happen; the last one started is the PBX that settings point at."""
    from pbxapi.simulator import SimulatorConfig, start_simulator

    started = []

    def start(**overrides: Any):
        config = {
            "port": 0,
            "seed": 1,
            "queues": 2,
            "agents": 4,
            "user": "wallboard-test",
            "password": "test-secret",
            "rate_limit": 20,
            "rate_window": TEST_WINDOW_SECONDS,
            "block_seconds": TEST_BLOCK_SECONDS,
            "autopilot": False,
            "history_days": 0,
            **overrides,
        }
        sim = start_simulator(SimulatorConfig(**config))
        started.append(sim)
        live_settings.PBX_BASE_URL = sim.url
        live_settings.PBX_USER = config["user"]
        live_settings.PBX_SECRET = config["password"]
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def simulator(simulator_factory):
    """A running simulator (2 queues, 4 agents, autopilot off) that settings point at."""
    return simulator_factory()


def live_environment(settings, **extra: str) -> dict[str, str]:
    """Environment for a worker/Daphne process that sees what this test's settings say."""
    env = {
        **os.environ,
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "wallboard.settings",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
        "PBX_BUDGET_KEY": settings.PBX_BUDGET_KEY,
        "PBX_API_URL": settings.PBX_BASE_URL,
        "PBX_API_USER": settings.PBX_USER,
        "PBX_API_PASSWORD": settings.PBX_SECRET,
        "PBX_CONNECT_TIMEOUT": str(settings.PBX_CONNECT_TIMEOUT),
        "PBX_READ_TIMEOUT": str(settings.PBX_READ_TIMEOUT),
        "PBX_BUDGET_REQUESTS": str(settings.PBX_BUDGET_REQUESTS),
        # The test simulator's limit is 20 per TEST_WINDOW_SECONDS, not the PBX's 20 per 5 s.
        "PBX_RATE_LIMIT": f"20/{TEST_WINDOW_SECONDS}",
        "PBX_BUDGET_WINDOW": str(settings.PBX_BUDGET_WINDOW),
        "PBX_ACTION_RESERVE": str(settings.PBX_ACTION_RESERVE),
        "PBX_BLOCK_SECONDS": str(settings.PBX_BLOCK_SECONDS),
        "POLL_TICK_SECONDS": str(settings.POLL_TICK_SECONDS),
        "POLL_UNWATCHED_SECONDS": str(settings.POLL_UNWATCHED_SECONDS),
        "POLL_BACKOFF_BASE_SECONDS": str(settings.POLL_BACKOFF_BASE_SECONDS),
        "POLL_BACKOFF_MAX_SECONDS": str(settings.POLL_BACKOFF_MAX_SECONDS),
        "WS_HEARTBEAT_SECONDS": str(settings.WS_HEARTBEAT_SECONDS),
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def celery_worker(live_settings) -> Iterator[Any]:
    """A real Celery worker in a thread of this process (solo pool) on this test's own queue.

    Tasks must be sent with ``queue=celery_worker.queue``. In-process, so it sees this test's
    settings (and the in-memory test database, unlike a worker process)."""
    from celery.contrib.testing.worker import start_worker

    from wallboard.celery import app

    queue = live_settings.CELERY_TASK_DEFAULT_QUEUE
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        loglevel="WARNING",
        queues=[queue],
        shutdown_timeout=10,
    ) as worker:
        worker.queue = queue
        yield worker


@pytest.fixture
def celery_beat_process(live_settings, tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start ``celery -A wallboard worker -B`` as a process on this test's queue and settings
    (the product's own beat schedule drives the poller). Returns a starter (extra env as
    keywords); stopped at teardown."""
    procs: list[subprocess.Popen] = []

    def start(**extra_env: str) -> subprocess.Popen:
        env = live_environment(live_settings, **extra_env)
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "wallboard", "worker", "-B",
                "--pool=solo", "--concurrency=1", "--loglevel=WARNING",
                "-Q", live_settings.CELERY_TASK_DEFAULT_QUEUE,
                "--schedule", str(tmp_path / f"beat-{len(procs)}"),
            ],
            cwd=ROOT,
            env=env,
        )  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        _stop(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} within {timeout:.0f} s")


@pytest.fixture(scope="session")
def file_database(tmp_path_factory) -> Iterator[str]:
    """A migrated database that server and worker processes can share with a test: a SQLite
    file, or, when the suite runs on PostgreSQL (DATABASE_URL), a database of its own there."""
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith(("postgres://", "postgresql://")):
        url, drop = _postgres_database(configured)
    else:
        url, drop = f"sqlite://{tmp_path_factory.mktemp('db') / 'wallboard.sqlite3'}", None
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity=0"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": url},
        check=True,
        timeout=120,
    )
    yield url
    if drop is not None:
        drop()


def _postgres_database(configured: str) -> tuple[str, Callable[[], None]]:
    """A new, empty database beside the configured one; and how to drop it."""
    parsed = urlsplit(configured)
    name = f"wallboard_processes_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(parsed._replace(path="/postgres"))

    def run(statement: str) -> None:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(statement)

    run(f'CREATE DATABASE "{name}"')
    return urlunsplit(parsed._replace(path=f"/{name}")), lambda: run(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )


@pytest.fixture
def daphne_server(live_settings, file_database) -> Iterator[Callable[..., str]]:
    """Start Daphne (``wallboard.asgi:application``) on an ephemeral port with this test's
    settings and the shared file database; returns its ``host:port``. Stopped at teardown."""
    procs: list[subprocess.Popen] = []

    def start(**extra_env: str) -> str:
        env = live_environment(live_settings, DATABASE_URL=file_database, **extra_env)
        for _attempt in range(3):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "wallboard.web", "-b", "127.0.0.1", "-p", str(port),
                 "wallboard.asgi:application"],
                cwd=ROOT,
                env=env,
            )  # fmt: skip
            procs.append(proc)
            try:
                wait_for_port(port, proc)
            except RuntimeError:
                _stop(proc)  # the port was taken between probing and binding: try another
                continue
            return f"127.0.0.1:{port}"
        raise RuntimeError("Daphne did not start")

    yield start
    for proc in procs:
        _stop(proc)


# Tests that start real processes or servers (a worker, Daphne, the whole stack, Chromium) are
# integration tests; `pytest -m "not integration"` is the fast inner loop.
_INTEGRATION_FIXTURES = frozenset(
    {"celery_worker", "celery_beat_process", "daphne_server", "stack", "file_database"}
)


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        uses = _INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def connection_kept(db) -> Iterator[None]:
    """Django's handler closes the database connection around every request; the test's
    transaction lives on that connection, so it stays open during the run (as Django's own test
    client arranges; without it PostgreSQL answers the second request with a closed connection)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)

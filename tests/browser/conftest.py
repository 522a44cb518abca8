"""The whole product for browser tests: the PBX simulator, a beat-driven Celery worker process,
Daphne on an ephemeral port (all from tests/conftest.py) and real Chromium through Playwright.

Accounts and kiosk tokens are made the way an operator makes them: manage.py commands run
against the same file database the Daphne process uses."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import ROOT, live_environment

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Short freshness limits so the stale banner shows within seconds.
NOTICE_SECONDS = 3
STALE_SECONDS = 6

USERS_SCRIPT = """
from django.contrib.auth import get_user_model
from wallboard.control.models import TeamLeadAssignment
suffix, queue_a, password = {suffix!r}, {queue!r}, {password!r}
model = get_user_model()
model.objects.create_superuser(f"admin-{suffix}", password=password)
model.objects.create_user(f"viewer-{suffix}", password=password)
lead = model.objects.create_user(f"lead-{suffix}", password=password)
TeamLeadAssignment.objects.create(user=lead, queue=queue_a)
"""


@dataclass
class Stack:
    """A running product: base URL, the simulator, how to run manage.py against it."""

    base_url: str
    sim: Any
    env: dict[str, str]
    worker: subprocess.Popen
    password: str = field(default_factory=lambda: uuid.uuid4().hex)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def username(self, role: str) -> str:
        return f"{role}-{self.suffix}"

    @property
    def queues(self) -> list[int]:
        return sorted(self.sim.centre.queue_numbers())

    def agent_name(self, extension: int) -> str:
        with self.sim.centre.lock:
            return self.sim.centre.agents[extension].name


@pytest.fixture
def stack(
    request, simulator_factory, celery_beat_process, daphne_server, file_database, live_settings
):
    """The running product; ``@pytest.mark.centre(queues=, agents=)`` sizes the call centre."""
    live_settings.WS_HEARTBEAT_SECONDS = 1.0
    marker = request.node.get_closest_marker("centre")
    size = {"queues": 2, "agents": 6, **(marker.kwargs if marker else {})}
    sim = simulator_factory(**size)
    address = daphne_server(
        BOARD_NOTICE_SECONDS=str(NOTICE_SECONDS), BOARD_STALE_SECONDS=str(STALE_SECONDS)
    )
    worker = celery_beat_process()
    base_url = f"http://{address}"
    env = live_environment(live_settings, DATABASE_URL=file_database, SITE_URL=base_url)
    built = Stack(base_url=base_url, sim=sim, env=env, worker=worker)
    # An admin, a viewer and a team lead of the first queue, as an operator would make them.
    script = USERS_SCRIPT.format(
        suffix=built.suffix, queue=built.queues[0], password=built.password
    )
    built.manage("shell", "-c", script)
    return built


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    # Package scope, not session: Playwright's sync API keeps an asyncio loop marked as running
    # in the main thread until it stops, and every async test after it would then fail with
    # "Runner.run() cannot be called from a running event loop".
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page_factory(browser):
    """New isolated browser pages (own cookies), closed after the test, which fails if a page
    threw an uncaught JavaScript error or the Content-Security-Policy refused something."""
    contexts = []
    js_errors: list[str] = []

    def console(message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            js_errors.append(message.text)

    def new(width: int = 1920, height: int = 1080, locale: str = "en-GB"):
        context = browser.new_context(
            viewport={"width": width, "height": height},
            locale=locale,
            timezone_id="Europe/Bratislava",
        )
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: js_errors.append(str(error)))
        page.on("console", console)
        return page

    yield new
    for context in contexts:
        context.close()
    assert not js_errors, f"uncaught JavaScript errors: {js_errors}"


def login(page, stack: Stack, role: str) -> None:
    page.goto(f"{stack.base_url}/login/")
    page.fill("#id_username", stack.username(role))
    page.fill("#id_password", stack.password)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{stack.base_url}/")


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def poller_stopped_and_redis_wiped(stack: Stack, settings) -> None:
    """The product as right after a deploy or a Redis restart: no poller running, nothing cached.
    A page opened now has no queues; ``celery_beat_process()`` starts the poller again."""
    stack.worker.terminate()
    stack.worker.wait(timeout=15)
    connection = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(connection.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*"))
        if keys:
            connection.delete(*keys)
    finally:
        connection.close()


def kiosk_url(stack: Stack, name: str, *queues: int) -> str:
    args = ["kiosk_token", "create", name]
    if queues:
        args += ["--queues", ",".join(map(str, queues))]
    url = stack.manage(*args).strip()
    assert url.startswith(stack.base_url + "/kiosk/"), url
    return url


# The call history's beat entry, run now: read the simulator's new call records and publish
# today's figures to the boards, at the simulator's clock (scripted calls move it ahead of the
# wall clock). A run the budget or another run held off is tried again.
PUBLISH_SCRIPT = """
import time
from datetime import UTC, datetime
from wallboard.history.services import cdr_poll_tick
for _attempt in range(40):
    report = cdr_poll_tick(now=datetime.fromtimestamp({now!r}, UTC))
    if report is not None and not report.deferred and report.failed is None:
        break
    time.sleep(0.25)
else:
    raise SystemExit(f"the call history could not read the PBX: {{report}}")
"""


def history_forgotten(stack: Stack) -> None:
    """No call records or read cursors in the file database: the browser tests share it for
    the session, and each has a simulator of its own (whose ids start again at 1)."""
    stack.manage(
        "shell",
        "-c",
        "from wallboard.history.models import CallRecord, CdrDayCursor; "
        "CallRecord.objects.all().delete(); CdrDayCursor.objects.all().delete()",
    )


def todays_figures_published(stack: Stack) -> None:
    stack.manage("shell", "-c", PUBLISH_SCRIPT.format(now=stack.sim.centre.now()))


def calls_made(stack: Stack, queue: int, waits: list[int], *, talk: int = 5) -> list[int]:
    """Answered calls of ``queue`` (one per wait in seconds, the queue's agents in turn, each
    talking ``talk`` seconds), then one caller who gave up after 40 s. Returns the agents."""
    centre = stack.sim.centre
    agents = centre.members(queue)[:2]
    for number, wait in enumerate(waits):
        agent = agents[number % len(agents)]
        centre.add_waiting_caller(queue, wait_time=wait)
        centre.start_call(queue, agent)
        centre.advance(talk, live=False)
        centre.end_call(agent)
    centre.abandon_caller(centre.add_waiting_caller(queue, wait_time=40))
    return agents


# What a queue panel shows, field by field (what ticks in the browser left out), as the page
# has it now: the server's first paint with scripts off, or the scripts' rendering.
PANEL_FIELDS = """(queue) => {
  const panel = document.querySelector(`.q[data-queue="${queue}"]`);
  const skip = new Set(["longest", "time", "agents", "result", "add"]);
  const text = (el) => el.textContent.replace(/\\s+/g, " ").trim();
  const shown = {};
  for (const el of panel.querySelectorAll("[data-f]")) {
    if (skip.has(el.dataset.f)) continue;
    const row = el.closest("[data-ext]");
    shown[row ? `${row.dataset.ext}:${el.dataset.f}` : el.dataset.f] = text(el);
  }
  for (const row of panel.querySelectorAll("[data-ext]")) {
    shown[`${row.dataset.ext}:state`] += ` (${row.dataset.state})`;
  }
  const staffing = panel.querySelector('[data-f="staffing"]');
  shown["staffing title"] = staffing.getAttribute("title") || "";
  shown["sl met"] = panel.querySelector('[data-f="sl"]').dataset.met || "";
  shown["sl target hidden"] = panel.querySelector('[data-f="sl-t"]').hidden;
  return shown;
}"""


def panel_fields(page, queue: int) -> dict[str, Any]:
    return page.evaluate(PANEL_FIELDS, queue)


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "centre(queues, agents): size of the simulated call centre for `stack`"
    )

"""The wallroom TV board in real Chromium against the running product."""

from __future__ import annotations

import itertools
import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    calls_made,
    history_forgotten,
    kiosk_url,
    panel_fields,
    poller_stopped_and_redis_wiped,
    screenshot,
    todays_figures_published,
)

pytestmark = pytest.mark.browser


def queue_panel(page, queue: int):
    return page.locator(f'.q[data-queue="{queue}"]')


def agent_row(page, queue: int, extension: int):
    return queue_panel(page, queue).locator(f'.agent[data-ext="{extension}"]')


def test_the_tv_board_follows_the_pbx_without_a_reload(stack, page_factory):
    queue = stack.queues[0]
    extension = stack.sim.centre.members(queue)[0]
    # Two waiting callers turn this queue's tile red (and it flashes).
    stack.manage(
        "shell",
        "-c",
        "from wallboard.boards.models import QueueDisplay; "
        # The file database lives for the whole session: update, never assume a fresh row.
        f"QueueDisplay.objects.update_or_create(queue={queue}, defaults=dict("
        "waiting_amber=1, waiting_red=2, flash=True))",
    )
    page = page_factory(1920, 1080)
    page.goto(kiosk_url(stack, f"tv-{stack.suffix}"))
    # The simulator's agents, by name, with their state in words.
    expect(agent_row(page, queue, extension).locator(".a-name")).to_have_text(
        stack.agent_name(extension)
    )
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    page.evaluate("window.__sameDocument = true")

    stack.sim.centre.add_waiting_caller(queue, caller="0903123456", wait_time=5)
    stack.sim.centre.add_waiting_caller(queue, caller="0903654321")
    stack.sim.centre.set_paused(queue, extension, True)

    expect(queue_panel(page, queue).locator('[data-f="waiting"]')).to_have_text("2")
    expect(queue_panel(page, queue)).to_have_attribute("data-level", "red")
    expect(queue_panel(page, queue)).to_have_class(re.compile(r"\bflash\b"))
    expect(agent_row(page, queue, extension)).to_have_attribute("data-state", "paused")
    expect(agent_row(page, queue, extension).locator(".a-state")).to_have_text("Paused")
    # The longest wait ticks in the browser between snapshots.
    longest = queue_panel(page, queue).locator('[data-f="longest"]')
    first = longest.inner_text()
    expect(longest).not_to_have_text(first, timeout=3000)
    assert re.fullmatch(r"\d+:\d\d", longest.inner_text())
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    screenshot(page, "tv-board-1920x1080.png")


def test_the_tv_board_shows_todays_figures_as_the_server_paints_them(stack, page_factory, browser):
    """The call history publishes today's figures; the open TV shows them without a reload
    (answered, missed, service level, ASA, abandon rate, the staffing hint, each agent's calls
    and talk today), and a TV opened afterwards paints exactly the same on the server."""
    queue = stack.queues[0]
    history_forgotten(stack)
    url = kiosk_url(stack, f"tv-kpi-{stack.suffix}")
    page = page_factory(1920, 1080)
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    tile = queue_panel(page, queue)
    expect(tile.locator('[data-f="asa"]')).to_have_text("—")

    waits = [3, 8, 12, 15, 18, 25, 30, 6, 9, 40, 4, 11]  # 9 of 12 within 20 s
    agents = calls_made(stack, queue, waits, talk=5)
    todays_figures_published(stack)

    expect(tile.locator('[data-f="answered"]')).to_have_text("12")
    expect(tile.locator('[data-f="missed"]')).to_have_text("1")
    expect(tile.locator('[data-f="sl"]')).to_have_text("69 %")  # 9 of 12 + 1 unanswered
    expect(tile.locator('[data-f="sl"]')).to_have_attribute("data-met", "no")  # goal 80 %
    expect(tile.locator('[data-f="sl-target"]')).to_have_text("20")
    expect(tile.locator('[data-f="asa"]')).to_have_text("0:15")  # 181 s / 12
    expect(tile.locator('[data-f="abandon"]')).to_have_text("8 %")  # 1 of 13
    expect(tile.locator('[data-f="needed"]')).to_have_text(re.compile(r"^\d+$"))
    expect(tile.locator('[data-f="staffing"]')).to_have_attribute(
        "title", re.compile(r"^Erlang C: 13 calls in the last 30 min, average talk 0:05")
    )
    row = agent_row(page, queue, agents[0])
    expect(row.locator('[data-f="calls"]')).to_have_text("6")
    expect(row.locator('[data-f="talk"]')).to_have_text("0:30")
    assert_fits(page)
    screenshot(page, "tv-board-todays-figures.png")

    # The server's first paint, scripts off, shows what the scripts show.
    context = browser.new_context(
        viewport={"width": 1920, "height": 1080}, java_script_enabled=False,
        timezone_id="Europe/Bratislava", locale="en-GB",
    )  # fmt: skip
    try:
        first_paint = context.new_page()
        first_paint.goto(url)
        painted = panel_fields(first_paint, queue)
    finally:
        context.close()
    assert painted["answered"] == "12" and painted[f"{agents[0]}:talk"] == "0:30"
    assert panel_fields(page, queue) == painted


@pytest.mark.centre(queues=4, agents=40)
def test_the_tv_board_fits_the_screen_without_scrolling(stack, page_factory):
    url = kiosk_url(stack, f"tv-fit-{stack.suffix}")
    for width, height in [(3840, 2160), (1920, 1080), (1366, 768)]:
        page = page_factory(width, height)
        page.goto(url)
        assert_fits(page)
        # Four queues, three per page: two pages that rotate with the clock.
        expect(page.locator('[data-f="page"]')).to_have_text(re.compile(r"Page [12] of 2"))
        assert page.locator(".q:visible").count() in {3, 1}
        screenshot(page, f"tv-board-{width}x{height}-fit.png")


def assert_fits(page) -> None:
    expect(page.locator(".q:visible .agent").first).to_be_visible()
    overflow = page.evaluate(
        """() => {
        const doc = document.documentElement;
        const clipped = [...document.querySelectorAll('.agent')].filter((el) => {
          const r = el.getBoundingClientRect();
          return r.bottom > window.innerHeight + 1 || r.right > window.innerWidth + 1;
        }).length;
        return {scrollH: doc.scrollHeight, h: window.innerHeight, clipped};
        }"""
    )
    assert overflow["scrollH"] <= overflow["h"]
    assert overflow["clipped"] == 0


def test_the_board_says_when_the_pbx_blocks_and_when_data_goes_stale(stack, page_factory):
    page = page_factory(1920, 1080)
    page.goto(kiosk_url(stack, f"tv-stale-{stack.suffix}"))
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    expect(page.locator('[data-banner="pbx"]')).to_be_hidden()

    stack.sim.centre.set_fault("forbidden")
    banner = page.locator('[data-banner="pbx"]')
    expect(banner).to_be_visible()
    expect(banner).to_have_text(re.compile(r"PBX blocked until \d\d:\d\d"))
    # No fetch succeeds while blocked: the data ages, the board says so and greys out.
    expect(page.locator('[data-banner="age"]')).to_have_text(
        re.compile(r"Data from \d\d:\d\d:\d\d \(\d+ s ago\)"), timeout=15000
    )
    expect(page.locator("body")).to_have_class(re.compile(r"\bstale\b"), timeout=15000)
    screenshot(page, "tv-board-blocked-stale.png")

    stack.sim.centre.set_fault(None)
    stack.sim.centre.unblock_all()
    # Once the block ends and polls succeed again the board recovers by itself.
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bstale\b"), timeout=20000)
    expect(banner).to_be_hidden(timeout=20000)

    # A PBX that stops answering is "unreachable since", not "blocked".
    stack.sim.centre.set_fault("down")
    expect(banner).to_have_text(re.compile(r"PBX unreachable since \d\d:\d\d:\d\d"), timeout=20000)


def test_the_board_greys_out_when_the_feed_stops(stack, page_factory):
    page = page_factory(1366, 768)
    page.goto(kiosk_url(stack, f"tv-feed-{stack.suffix}"))
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    stack.worker.terminate()  # the poller stops: heartbeats go on, but fresh_at stands still
    stack.worker.wait(timeout=15)
    expect(page.locator('[data-banner="age"]')).to_be_visible(timeout=15000)
    expect(page.locator("body")).to_have_class(re.compile(r"\bstale\b"), timeout=15000)


def test_a_revoked_kiosk_url_stops_working_open_socket_included(stack, page_factory):
    name = f"tv-revoke-{stack.suffix}"
    url = kiosk_url(stack, name, stack.queues[1])
    page = page_factory(1920, 1080)
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    assert page.locator(".q").count() == 1

    stack.manage("kiosk_token", "revoke", name)
    expect(page.locator("body")).to_have_attribute("data-conn", "closed", timeout=10000)
    expect(page.locator('[data-banner="conn"]')).to_have_text("This board has been switched off.")
    response = page.goto(url)
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("This board has been switched off.")


def test_the_board_reconnects_with_backoff_when_the_link_drops(stack, page_factory):
    page = page_factory(1366, 768)
    link = {"refuse": False, "attempts": [], "open": []}

    def through(ws) -> None:
        # Every websocket of the page passes here: either on to Daphne or refused at once.
        link["attempts"].append(time.monotonic())
        if link["refuse"]:
            ws.close(code=1011, reason="test: server away")
            return
        ws.connect_to_server()
        link["open"].append(ws)

    page.route_web_socket(re.compile(r".*/ws/kiosk/.*"), through)
    page.goto(kiosk_url(stack, f"tv-link-{stack.suffix}"))
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    page.evaluate("window.__sameDocument = true")

    link["refuse"] = True
    dropped_at = time.monotonic()
    link["open"][-1].close(code=1006, reason="test: link dropped")
    expect(page.locator('[data-banner="conn"]')).to_have_text("Reconnecting…")
    page.wait_for_timeout(6000)
    retries = [t - dropped_at for t in link["attempts"] if t > dropped_at]
    # Exponential backoff with jitter: 0.5-1 s, 1-2 s, 2-4 s... so a few tries, not a storm.
    assert 2 <= len(retries) <= 4, retries
    gaps = [b - a for a, b in itertools.pairwise(retries)]
    assert all(gap >= 0.4 for gap in gaps), gaps

    link["refuse"] = False
    expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=20000)
    expect(page.locator('[data-banner="conn"]')).to_be_hidden()
    assert page.evaluate("window.__sameDocument") is True


@pytest.mark.centre(queues=3, agents=18, autopilot=True, speed=20.0)
def test_the_board_updates_in_place_under_a_busy_call_centre(stack, page_factory):
    page = page_factory(1920, 1080)
    snapshots = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda frame: snapshots.append(1) if '"type":"snapshot"' in str(frame) else None,
        ),
    )
    page.goto(kiosk_url(stack, f"tv-busy-{stack.suffix}"))
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    count_nodes = "() => document.getElementsByTagName('*').length"
    page.wait_for_timeout(4000)
    before, updates_before = page.evaluate(count_nodes), len(snapshots)
    page.wait_for_timeout(12000)
    after, updates = page.evaluate(count_nodes), len(snapshots) - updates_before
    assert updates >= 10, "the simulated centre should have changed the board many times"
    # Rows are reused by extension: the DOM does not grow with the number of updates.
    assert after <= before * 1.05, (before, after)
    screenshot(page, "tv-board-busy.png")


# Count the beeps: wrap WebAudio before the page's module runs (no audio device needed).
COUNT_BEEPS = """
window.__beeps = 0;
const Original = window.AudioContext;
window.AudioContext = class extends Original {
  createOscillator() { window.__beeps += 1; return super.createOscillator(); }
};
"""


def test_a_board_with_sound_beeps_when_a_queue_turns_red(stack, page_factory):
    queue = stack.queues[0]
    stack.manage(
        "shell",
        "-c",
        "from wallboard.boards.models import Board, QueueDisplay; "
        f"QueueDisplay.objects.update_or_create(queue={queue}, defaults=dict("
        "waiting_amber=1, waiting_red=1)); "
        f"Board.objects.create(name='Sales floor', slug='sales-{stack.suffix}', "
        f"queues=[{queue}], sound_alert=True)",
    )
    url = stack.manage("kiosk_token", "create", f"tv-sound-{stack.suffix}", "--board",
                       f"sales-{stack.suffix}").strip()  # fmt: skip
    page = page_factory(1920, 1080)
    page.add_init_script(COUNT_BEEPS)
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    assert page.locator(".q").count() == 1  # the board's queues only
    page.mouse.click(10, 10)  # browsers start audio only after a gesture
    stack.sim.centre.add_waiting_caller(queue)
    expect(queue_panel(page, queue)).to_have_attribute("data-level", "red")
    # The two-tone beep. (Polled from here: wait_for_function evaluates a string in the page,
    # which the Content-Security-Policy rightly refuses.)
    deadline = time.monotonic() + 5
    while page.evaluate("window.__beeps || 0") < 2:
        assert time.monotonic() < deadline, "no beep"
        page.wait_for_timeout(100)


def test_a_tv_opened_before_the_first_poll_fills_in_by_itself(
    stack, page_factory, celery_beat_process, settings
):
    """A TV switched on while the product has no data yet (first start, or Redis restarted)
    shows queues as the poller finds them, without a reload: weeks later, a queue added on the
    PBX appears the same way."""
    poller_stopped_and_redis_wiped(stack, settings)
    page = page_factory(1920, 1080)
    page.goto(kiosk_url(stack, f"tv-early-{stack.suffix}"))
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    assert page.locator(".q[data-queue]").count() == 0
    page.evaluate("window.__sameDocument = true")

    celery_beat_process()  # the poller starts: the queue list, then every queue's snapshot
    for queue in stack.queues:
        expect(queue_panel(page, queue).locator('[data-f="waiting"]')).to_have_text(
            "0", timeout=20000
        )
    extension = stack.sim.centre.members(stack.queues[0])[0]
    expect(agent_row(page, stack.queues[0], extension).locator(".a-name")).to_have_text(
        stack.agent_name(extension)
    )
    assert page.evaluate("window.__sameDocument") is True

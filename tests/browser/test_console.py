"""The supervisor console in real Chromium: roles, actions over the websocket, the API's
refusals for the same roles."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    calls_made,
    history_forgotten,
    login,
    panel_fields,
    poller_stopped_and_redis_wiped,
    screenshot,
    todays_figures_published,
)

pytestmark = pytest.mark.browser

# Open a second socket from the page (the user's session) and send one action on it.
WS_ACTION = """async ([queue, extension]) => {
  const ws = new WebSocket(`ws://${location.host}/ws/board/`);
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no answer")), 10000);
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "hello") {
        ws.send(JSON.stringify({type: "action", request_id: "probe", action: "pause",
                                queue, extension}));
      } else if (message.request_id === "probe") {
        clearTimeout(timer); ws.close(); resolve(message);
      }
    };
  });
}"""


def panel(page, queue: int):
    return page.locator(f'.q[data-queue="{queue}"]')


def api_pause(page, stack, queue: int, extension: int):
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    return page.request.post(
        f"{stack.base_url}/api/v1/queues/{queue}/members/{extension}/pause",
        headers={"X-CSRFToken": cookies.get("csrftoken", ""), "Referer": stack.base_url + "/"},
    )


def test_a_team_lead_pauses_removes_and_adds_agents_of_their_queue(stack, page_factory):
    queue_a = stack.queues[0]
    centre = stack.sim.centre
    ext = next(e for e in centre.members(queue_a) if not centre.member_state(queue_a, e)["paused"])
    page = page_factory(1600, 1000)
    login(page, stack, "lead")
    page.goto(f"{stack.base_url}/console/")
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    row = panel(page, queue_a).locator(f'.agent[data-ext="{ext}"]')
    expect(row.locator('[data-f="name"]')).to_have_text(stack.agent_name(ext))

    row.locator('[data-action="pause"]').click()
    result = panel(page, queue_a).locator('[data-f="result"]')
    expect(result).to_have_text(re.compile(rf"{ext} · Pause: Paused"))
    expect(result).to_have_attribute("data-outcome", "ok")
    expect(row).to_have_attribute("data-state", "paused", timeout=5000)
    expect(row.locator('[data-action="unpause"]')).to_be_visible()
    assert centre.member_state(queue_a, ext)["paused"] is True
    screenshot(page, "console-team-lead.png")

    # Remove asks first, in the page; cancelling does nothing.
    row.locator('[data-action="remove"]').click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(stack.agent_name(ext))
    dialog.locator('button[value="cancel"]').click()
    expect(dialog).to_be_hidden()
    assert ext in centre.members(queue_a)
    row.locator('[data-action="remove"]').click()
    dialog.locator('button[value="ok"]').click()
    expect(result).to_have_text(re.compile(rf"{ext} · Remove: Removed from queue"))
    expect(row).to_have_count(0, timeout=5000)
    assert ext not in centre.members(queue_a)

    # Add it back from the extension list (name and registration shown).
    select = panel(page, queue_a).locator('select[name="extension"]')
    expect(select.locator(f'option[value="{ext}"]')).to_contain_text(stack.agent_name(ext))
    select.select_option(str(ext))
    panel(page, queue_a).locator('button[data-action="add"]').click()
    expect(result).to_have_text(re.compile(rf"{ext} · Add: Added to queue"))
    expect(row).to_have_count(1, timeout=5000)

    # Every action is in the audit trail, with the PBX's answer. (The database is shared by the
    # browser tests: other tests' actions on this extension are not this lead's.)
    page.goto(f"{stack.base_url}/audit/?extension={ext}&user={stack.username('lead')}")
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Add to queue")
    expect(rows.nth(2)).to_contain_text("Pause")
    expect(rows.nth(2)).to_contain_text(stack.username("lead"))
    screenshot(page, "audit-team-lead.png")


def test_the_console_shows_todays_figures_as_the_server_paints_them(stack, page_factory, browser):
    """Today's figures from the call history on a supervisor's console: the queue's (with the
    staffing hint's reasoning on hover) and each agent's answered calls and talk time; the
    server's first paint and the page's scripts write the same."""
    queue = stack.queues[0]
    history_forgotten(stack)
    page = page_factory(1600, 1000)
    login(page, stack, "lead")
    page.goto(f"{stack.base_url}/console/")
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    card = panel(page, queue)
    expect(card.locator('[data-f="sl-t"]')).to_be_hidden()  # no figures yet, no target

    agents = calls_made(stack, queue, [2, 4, 6, 8], talk=35)  # all within 20 s
    todays_figures_published(stack)

    expect(card.locator('[data-f="answered"]')).to_have_text("4")
    expect(card.locator('[data-f="sl"]')).to_have_text("80 %")  # 4 of 4 + 1 unanswered
    expect(card.locator('[data-f="sl"]')).to_have_attribute("data-met", "yes")
    expect(card.locator('[data-f="sl-t"]')).to_have_text("≤ 20 s")
    expect(card.locator('[data-f="asa"]')).to_have_text("0:05")
    expect(card.locator('[data-f="abandon"]')).to_have_text("20 %")
    expect(card.locator('[data-f="needed"]')).to_have_text("—")  # 5 calls: too few
    expect(card.locator('[data-f="staffing"]')).to_have_attribute(
        "title", "No hint yet: 5 calls in the last 30 min (at least 10 needed)"
    )
    row = card.locator(f'.agent[data-ext="{agents[1]}"]')
    expect(row.locator('[data-f="calls"]')).to_have_text("2")
    expect(row.locator('[data-f="talk"]')).to_have_text("1:10")
    screenshot(page, "console-todays-figures.png")

    context = browser.new_context(
        viewport={"width": 1600, "height": 1000}, java_script_enabled=False,
        timezone_id="Europe/Bratislava", locale="en-GB",
    )  # fmt: skip
    try:
        first_paint = context.new_page()
        login(first_paint, stack, "lead")
        first_paint.goto(f"{stack.base_url}/console/")
        painted = panel_fields(first_paint, queue)
    finally:
        context.close()
    assert painted[f"{agents[1]}:talk"] == "1:10"
    assert panel_fields(page, queue) == painted


def test_a_team_lead_cannot_act_on_another_teams_queue(stack, page_factory):
    _queue_a, queue_b = stack.queues
    ext = stack.sim.centre.members(queue_b)[0]
    page = page_factory(1600, 1000)
    login(page, stack, "lead")
    page.goto(f"{stack.base_url}/console/")
    expect(panel(page, queue_b).locator(".agent").first).to_be_visible()
    assert panel(page, queue_b).locator("[data-action]").count() == 0
    # The server refuses even a hand-made websocket action and the API call.
    answer = page.evaluate(WS_ACTION, [queue_b, ext])
    assert answer["type"] == "error" and answer["code"] == "forbidden"
    assert api_pause(page, stack, queue_b, ext).status == 403
    assert stack.sim.centre.member_state(queue_b, ext)["paused"] is False


def test_a_viewer_sees_no_buttons_and_the_api_refuses_them(stack, page_factory):
    queue_a = stack.queues[0]
    ext = stack.sim.centre.members(queue_a)[0]
    page = page_factory(1600, 1000)
    login(page, stack, "viewer")
    page.goto(f"{stack.base_url}/console/")
    expect(panel(page, queue_a).locator(".agent").first).to_be_visible()
    assert page.locator(".console-queues [data-action]").count() == 0
    assert page.locator(".console-queues select").count() == 0
    answer = page.evaluate(WS_ACTION, [queue_a, ext])
    assert answer["code"] == "forbidden"
    assert api_pause(page, stack, queue_a, ext).status == 403
    assert page.goto(f"{stack.base_url}/audit/").status == 403


def test_an_admin_sees_the_console_in_slovak(stack, page_factory):
    page = page_factory(1600, 1000, locale="sk-SK")
    login(page, stack, "admin")
    page.goto(f"{stack.base_url}/console/")
    expect(page.locator("h1")).to_have_text("Konzola supervízora")
    expect(page.locator(".q [data-action='remove']").first).to_have_text("Odobrať")
    expect(page.locator(".agent .a-state").first).to_have_text(
        re.compile("Voľný|Zvoní|Hovorí|Pozastavený|Odhlásený")
    )
    screenshot(page, "console-admin-sk.png")
    page.goto(f"{stack.base_url}/")
    expect(page.locator("h1")).to_have_text("Tabule")
    expect(page.locator("table.grid tbody tr")).to_have_count(len(stack.queues))
    screenshot(page, "home-admin-sk.png")


def test_a_console_opened_before_the_first_poll_gets_controls_for_the_queues_that_appear(
    stack, page_factory, celery_beat_process, settings
):
    """Queues the page did not know when it was rendered (a new PBX queue, or no data yet after a
    deploy) arrive over the websocket; an admin must be able to act on them without a reload."""
    poller_stopped_and_redis_wiped(stack, settings)
    page = page_factory(1600, 1000)
    login(page, stack, "admin")
    page.goto(f"{stack.base_url}/console/")
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    assert page.locator(".q[data-queue]").count() == 0
    expect(page.get_by_text("Read-only")).to_have_count(0)
    page.evaluate("window.__sameDocument = true")

    celery_beat_process()  # the poller finds the queues
    queue = stack.queues[0]
    centre = stack.sim.centre
    ext = next(e for e in centre.members(queue) if not centre.member_state(queue, e)["paused"])
    row = panel(page, queue).locator(f'.agent[data-ext="{ext}"]')
    expect(row.locator('[data-action="pause"]')).to_be_visible(timeout=20000)
    expect(panel(page, queue).locator('[data-f="add"] select')).to_have_attribute(
        "id", f"add-{queue}"
    )
    row.locator('[data-action="pause"]').click()
    expect(row).to_have_attribute("data-state", "paused", timeout=5000)
    assert centre.member_state(queue, ext)["paused"]
    assert page.evaluate("window.__sameDocument") is True

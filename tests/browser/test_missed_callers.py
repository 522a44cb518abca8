"""Missed callers on the console in real Chromium, against the whole product: a simulated caller
gives up -> the list fills after the call history's poll; a team lead calls back (a double
click included) -> the simulator's call/create is asked exactly once; two team leads at once
-> still once, and the second learns who calls; the call is answered -> the entry goes."""

from __future__ import annotations

import random
import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    history_forgotten,
    login,
    screenshot,
    todays_figures_published,
)

pytestmark = pytest.mark.browser

DESK = 200  # the simulator's reception desk: registered, in no queue, free to ring

# The second team lead of the first queue, with a name.
JANA_SCRIPT = """
from django.contrib.auth import get_user_model
from wallboard.control.models import TeamLeadAssignment
user = get_user_model().objects.create_user(
    {username!r}, password={password!r}, first_name="Jana", last_name="Nováková"
)
TeamLeadAssignment.objects.create(user=user, queue={queue!r})
"""
# Call backs of earlier tests' numbers stay in the session's shared database.
CLAIMS_FORGOTTEN = (
    "from wallboard.control.models import CallBackClaim; CallBackClaim.objects.all().delete()"
)

# What a missed-callers row shows, field by field, as the page has it now (server paint with
# scripts off, or the script's rendering).
MISSED_ROWS = """() => [...document.querySelectorAll('[data-f="missed-rows"] tr[data-id]')].map(
  (row) => ({
    id: row.dataset.id,
    claimed: row.dataset.claimed,
    ...Object.fromEntries([...row.querySelectorAll("[data-f]")].map(
      (el) => [el.dataset.f, el.textContent.replace(/\\s+/g, " ").trim()])),
    button: row.querySelector('[data-action="call-back"]').hidden ? "hidden" : "shown",
  }))"""


def a_number() -> str:
    return f"00421905{random.randrange(10**6):06d}"


def shown(number: str) -> str:
    return f"{number[:5]} {number[5:8]} {number[8:11]} {number[11:]}"


def gave_up(stack, queue: int, number: str, *, waited: int = 40) -> None:
    """The caller entered the queue now and hung up ``waited`` seconds later. The simulator's
    clock (still while nothing is scripted) first catches up with ours: the history publishes
    figures by it, and a publication older than the worker's last one would be dropped."""
    centre = stack.sim.centre
    centre.advance(max(0.0, time.time() - centre.now()) + waited, live=False)
    centre.abandon_caller(centre.add_waiting_caller(queue, caller=number, wait_time=waited))


def placed(stack) -> list[tuple[str, str]]:
    return [(e["caller"], e["destination"]) for e in stack.sim.centre.call_create_log()]


def console(page_factory, stack, role: str, *, username: str | None = None):
    page = page_factory(1600, 1000)
    if username is None:
        login(page, stack, role)
    else:
        page.goto(f"{stack.base_url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", stack.password)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{stack.base_url}/")
    page.goto(f"{stack.base_url}/console/")
    expect(page.locator("body")).to_have_attribute("data-conn", "open")
    return page


def panel(page):
    return page.locator('[data-f="missed-callers"]')


def row_of(page, number: str):
    return panel(page).locator("tr[data-id]", has_text=shown(number))


def open_dialog(page, number: str):
    row_of(page, number).locator('[data-action="call-back"]').click()
    dialog = page.locator('[data-f="callback-dialog"]')
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(shown(number))
    dialog.locator("select").select_option(str(DESK))
    return dialog


@pytest.mark.centre(call_rate=0)
def test_a_team_lead_calls_back_a_caller_who_gave_up(stack, page_factory, browser):
    queue = stack.queues[0]
    number = a_number()
    history_forgotten(stack)
    stack.manage("shell", "-c", CLAIMS_FORGOTTEN)
    page = console(page_factory, stack, "lead")
    expect(panel(page).locator('[data-f="missed-empty"]')).to_have_text("No missed callers today.")

    gave_up(stack, queue, number)
    todays_figures_published(stack)

    # New figures on the board: the console reads the missed callers again.
    row = row_of(page, number)
    expect(row).to_have_count(1)
    expect(row.locator('[data-f="outcome"]')).to_have_text("abandoned")
    expect(row.locator('[data-f="wait"]')).to_have_text("0:40")
    expect(row.locator('[data-f="attempts"]')).to_have_text("1")
    expect(panel(page).locator('[data-f="missed-count"]')).to_have_text("1")
    screenshot(page, "console-missed-callers.png")

    # The server's first paint (scripts off) and the script write the same rows.
    context = browser.new_context(
        viewport={"width": 1600, "height": 1000}, java_script_enabled=False,
        timezone_id="Europe/Bratislava", locale="en-GB",
    )  # fmt: skip
    try:
        first_paint = context.new_page()
        login(first_paint, stack, "lead")
        first_paint.goto(f"{stack.base_url}/console/")
        painted = first_paint.evaluate(MISSED_ROWS)
    finally:
        context.close()
    assert painted == page.evaluate(MISSED_ROWS)
    assert (
        painted[0]["queue"]
        == page.locator(f'.q[data-queue="{queue}"] [data-f="qname"]').inner_text()
    )

    # Call back from the desk; a double click on "Call back" sends one request.
    stack.sim.centre.set_call_outcome(number, "answered")
    dialog = open_dialog(page, number)
    screenshot(page, "console-call-back-dialog.png")
    dialog.locator('button[value="ok"]').dblclick()
    result = panel(page).locator('[data-f="missed-result"]')
    expect(result).to_have_text(
        f"Call queued: extension {DESK} rings first; when it is picked up, the PBX dials "
        f"{shown(number)}."
    )
    expect(result).to_have_attribute("data-outcome", "ok")
    expect(row.locator('[data-f="state"]')).to_have_text(
        re.compile(rf"^You are calling back from {DESK} since \d\d:\d\d$")
    )
    expect(row.locator('[data-action="call-back"]')).to_be_hidden()
    assert placed(stack) == [(str(DESK), number)]
    screenshot(page, "console-missed-callers-calling.png")

    # The desk picks up, the PBX dials, the caller answers; the history reads the record.
    stack.sim.centre.advance(20)
    stack.sim.centre.end_call(DESK)
    todays_figures_published(stack)
    expect(row).to_have_count(0, timeout=30000)  # the list's own refresh (every 20 s)
    expect(panel(page).locator('[data-f="missed-empty"]')).to_be_visible()
    assert placed(stack) == [(str(DESK), number)]

    # The audit trail has it, with how the call went.
    page.goto(f"{stack.base_url}/audit/?action=call_back")
    audit = page.locator("table.audit tbody tr")
    expect(audit).to_have_count(1)
    expect(audit).to_contain_text("Call back")
    expect(audit).to_contain_text(f"{shown(number)} · answered")
    expect(audit).to_contain_text("Call queued")


@pytest.mark.centre(call_rate=0)
def test_two_team_leads_calling_back_at_once_place_one_call(stack, page_factory):
    queue = stack.queues[0]
    number = a_number()
    history_forgotten(stack)
    stack.manage("shell", "-c", CLAIMS_FORGOTTEN)
    jana = f"jana-{stack.suffix}"
    stack.manage(
        "shell", "-c", JANA_SCRIPT.format(username=jana, password=stack.password, queue=queue)
    )
    gave_up(stack, queue, number)
    todays_figures_published(stack)
    lead = console(page_factory, stack, "lead")
    other = console(page_factory, stack, "lead", username=jana)
    for page in (lead, other):
        expect(row_of(page, number)).to_have_count(1)

    lead_dialog, other_dialog = open_dialog(lead, number), open_dialog(other, number)
    lead_dialog.locator('button[value="ok"]').click(no_wait_after=True)
    other_dialog.locator('button[value="ok"]').click(no_wait_after=True)

    results = [panel(page).locator('[data-f="missed-result"]') for page in (lead, other)]
    for result in results:
        expect(result).to_have_attribute("data-outcome", re.compile(r"^(ok|fail)$"))
    outcomes = sorted(result.get_attribute("data-outcome") for result in results)
    assert outcomes == ["fail", "ok"]
    assert placed(stack) == [(str(DESK), number)]
    winner, loser = (
        (lead, other) if results[0].get_attribute("data-outcome") == "ok" else (other, lead)
    )
    name = "Jana Nováková" if winner is other else stack.username("lead")
    expect(panel(loser).locator('[data-f="missed-result"]')).to_have_text(
        re.compile(rf"^{shown(number)} is being called back by {name} since \d\d:\d\d\.$")
    )
    expect(row_of(loser, number).locator('[data-f="state"]')).to_have_text(
        re.compile(rf"^Being called back by {name} since \d\d:\d\d$")
    )
    expect(row_of(loser, number).locator('[data-action="call-back"]')).to_be_hidden()
    screenshot(loser, "console-missed-callers-claimed.png")

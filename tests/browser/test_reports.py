"""The reports page in real Chromium over the whole product: a simulated centre's past week,
imported from its CDR with `manage.py cdr_import` as an operator would, shown with the figures
the KPI engine computes from the simulator's own rows; switching range and interval, the
drill-down, sorting, CSV downloads with the documented columns, light and dark screenshots."""

from __future__ import annotations

import csv
import re
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, login, screenshot
from tests.history_seed import centre_rows
from tests.report_columns import documented_columns
from wallboard.history.kpi import CallFact, KpiRules, SelectionReport, selection_report
from wallboard.history.records import record_read

pytestmark = pytest.mark.browser

ZONE = ZoneInfo("Europe/Bratislava")
# Eight days of history: the seven before today, and today so far.
CENTRE = {"queues": 2, "agents": 6, "history_days": 8}
CHARTS = ["volume", "service-level", "asa", "hours"]
HISTORY_CLEARED = """
from wallboard.history.models import CallRecord, CdrDayCursor
CallRecord.objects.all().delete()
CdrDayCursor.objects.all().delete()
"""


def week(stack) -> tuple[date, date]:
    """The seven whole days before today, in the PBX's time zone."""
    today = datetime.now(ZONE).date()
    return today - timedelta(days=7), today - timedelta(days=1)


def history_imported(stack) -> None:
    """The week's CDR read into the history with cdr_import, once the poller has put the
    queue list in the live cache (cdr_import attributes calls to the queues it lists)."""
    deadline = time.monotonic() + 45
    check = "from wallboard.live.selectors import known_queue_numbers as k; print(sorted(k()))"
    # The last line: Django's shell may print a line of its own first.
    while stack.manage("shell", "-c", check).strip().splitlines()[-1] != str(stack.queues):
        assert time.monotonic() < deadline, "the poller never listed the queues"
        time.sleep(0.5)
    # The browser tests share one database file: start from no history, so the page holds
    # this test's simulated centre only.
    stack.manage("shell", "-c", HISTORY_CLEARED)
    first, last = week(stack)
    summary = stack.manage("cdr_import", "--from", first.isoformat(), "--to", last.isoformat())
    assert "Read 7 days" in summary, summary


def engine_report(
    stack, first: date, last: date, interval: str, queues: list[int] | None = None
) -> SelectionReport:
    """The KPI engine over the simulator's own rows for the range and queues (all by
    default), not over the product's database: what the page must show."""
    queues = queues or stack.queues
    facts = []
    for raw in centre_rows(stack.sim.centre):
        record = record_read(raw, known=stack.queues, zone=ZONE)
        if record["queue"] in queues and first <= record["day"] <= last:
            facts.append(
                CallFact(*(record[name] for name in ("queue", "day", "slot", "outcome")),
                         record["wait"], record["talk"], record["agent"])
            )  # fmt: skip
    return selection_report(
        [facts],
        rules={queue: KpiRules() for queue in queues},
        date_from=first,
        date_to=last,
        interval=interval,
        zone=ZONE,
    )


def digits(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def figure(page, key: str):
    return page.locator(f'[data-figure="{key}"] [data-f="value"]')


def chart_sum(page, chart: str, dataset: int) -> int:
    return page.evaluate(
        """([id, index]) => Chart.getChart(id).data.datasets[index].data
                               .reduce((a, b) => a + (b || 0), 0)""",
        [f"chart-{chart}", dataset],
    )


def opened(page, stack, query: str) -> None:
    page.goto(f"{stack.base_url}/reports/?{query}")
    expect(page.locator("body")).to_have_attribute("data-charts", "ready")


@pytest.mark.centre(**CENTRE)
def test_the_reports_page_shows_the_engines_figures_for_a_week(stack, page_factory):
    history_imported(stack)
    first, last = week(stack)
    engine = engine_report(stack, first, last, "day")
    total = engine.selection_total
    page = page_factory(1600, 1000)
    login(page, stack, "admin")

    opened(page, stack, f"range=custom&date_from={first}&date_to={last}&interval=day")

    assert total.offered > 1000  # a real week, not a handful of rows
    assert digits(figure(page, "offered").inner_text()) == total.offered
    assert digits(figure(page, "answered").inner_text()) == total.answered
    assert digits(figure(page, "abandoned").inner_text()) == total.abandoned
    assert digits(figure(page, "short_abandoned").inner_text()) == total.short_abandoned
    expect(figure(page, "service_level")).to_have_text(f"{total.service_level:.1f} %")
    expect(figure(page, "abandon_rate")).to_have_text(f"{total.abandon_rate:.1f} %")
    asa = int(total.asa + 0.5)  # to the nearest second, halves up
    expect(figure(page, "asa")).to_have_text(f"{asa // 60}:{asa % 60:02d}")
    for queue in stack.queues:
        row = page.locator(f'tr[data-queue="{queue}"]')
        expect(row.locator('[data-f="offered"]')).to_have_text(str(engine.totals[queue].offered))
    expect(page.locator('[data-f="formula"]')).to_contain_text(
        "answered within 20 s ÷ (answered + unanswered)"
    )
    # The charts drew the same calls: per day, and per hour of the day.
    assert chart_sum(page, "volume", 0) == total.answered
    assert chart_sum(page, "volume", 1) == total.abandoned
    assert chart_sum(page, "hours", 0) == total.answered
    labels = page.evaluate("Chart.getChart('chart-volume').data.labels.length")
    assert labels == 7

    screenshot(page, "reports-week-light.png")
    page.screenshot(path=str(ARTIFACTS / "reports-week-light-full.png"), full_page=True)
    for chart in CHARTS:
        page.locator(f'[data-chart="{chart}"]').screenshot(
            path=str(ARTIFACTS / f"reports-chart-{chart}-light.png")
        )
    # The same page on a dark system: the charts repaint in the dark theme's colours.
    # Functions, not expressions: Playwright evaluates an expression that is not true at once
    # with eval() in the page, which the page's Content-Security-Policy refuses.
    page.emulate_media(color_scheme="dark")
    page.wait_for_function(
        "() => getComputedStyle(document.documentElement).getPropertyValue('--chart-text')"
        ".trim() === '#cbd5e1'"
    )
    page.wait_for_function(
        "() => Chart.getChart('chart-volume').options.scales.x.ticks.color === '#cbd5e1'"
    )
    page.screenshot(path=str(ARTIFACTS / "reports-week-dark-full.png"), full_page=True)
    for chart in CHARTS:
        page.locator(f'[data-chart="{chart}"]').screenshot(
            path=str(ARTIFACTS / f"reports-chart-{chart}-dark.png")
        )

    # Switching the interval and the range reloads the page with the new question.
    page.emulate_media(color_scheme="light")
    page.select_option("#id_interval", "hour")
    page.wait_for_url(re.compile(r"interval=hour"))
    expect(page.locator("body")).to_have_attribute("data-charts", "ready")
    assert page.evaluate("Chart.getChart('chart-volume').data.labels.length") == 7 * 24
    assert chart_sum(page, "volume", 0) == total.answered
    page.select_option("#id_range", "yesterday")
    page.wait_for_url(re.compile(r"range=yesterday"))
    expect(page.locator("body")).to_have_attribute("data-charts", "ready")
    yesterday = engine_report(stack, last, last, "hour").selection_total
    assert digits(figure(page, "offered").inner_text()) == yesterday.offered
    expect(page.locator("#id_interval")).to_have_value("hour")
    expect(page.locator("#id_date_from")).to_have_value(last.isoformat())
    screenshot(page, "reports-yesterday.png")


@pytest.mark.centre(**CENTRE)
def test_drill_down_sorting_and_csv_downloads(stack, page_factory, tmp_path):
    history_imported(stack)
    first, last = week(stack)
    engine = engine_report(stack, first, last, "day")
    page = page_factory(1600, 1000)
    login(page, stack, "lead")  # the team lead of the first queue: the picker has only it
    queue = stack.queues[0]
    lead_engine = engine_report(stack, first, last, "day", queues=[queue])

    opened(page, stack, f"range=custom&date_from={first}&date_to={last}&interval=day")

    assert page.locator('.queue-list input[type="checkbox"]').count() == 1
    assert [int(q) for q in page.locator("tr[data-queue]").evaluate_all(
        "rows => rows.map(r => r.dataset.queue)")] == [queue]  # fmt: skip
    offered = [f.offered for f in lead_engine.figures[queue]]
    # Click the busiest day's bar: its calls are listed, 50 a page.
    busiest = max(range(7), key=lambda day: offered[day])
    point = page.evaluate(
        """(index) => { const bar = Chart.getChart('chart-volume').getDatasetMeta(0).data[index];
                        return [bar.x, bar.y + 2]; }""",
        busiest,
    )
    page.locator("#chart-volume").click(position={"x": point[0], "y": point[1]})
    drill = page.locator('[data-f="drill"]')
    expect(drill.locator('[data-f="drill-total"]')).to_have_text(f"{offered[busiest]} calls")
    expect(drill.locator("tr[data-call]")).to_have_count(50)
    drill.locator("button[data-page='2']").click()
    expect(drill.locator('[data-f="drill-page"]')).to_contain_text("Page 2 of")
    drill.screenshot(path=str(ARTIFACTS / "reports-drill-period.png"))

    # Sort the agents by calls, fewest first, then open the first agent's calls.
    agents = page.locator('[data-f="agent-table"]')
    agents.locator("th button", has_text="Calls answered").click()
    calls = agents.locator('tbody td[data-f="calls"]').all_inner_texts()
    assert [int(c) for c in calls] == sorted(int(c) for c in calls)
    fewest = agents.locator("tbody tr").first
    agent = fewest.get_attribute("data-agent")
    fewest.locator("button[data-drill-agent]").click()
    expect(drill.locator('[data-f="drill-title"]')).to_have_text(f"Calls answered by {agent}")
    mine = next(a for a in lead_engine.agents if a.agent == agent)
    expect(drill.locator('[data-f="drill-total"]')).to_have_text(
        f"{mine.calls} call" + ("s" if mine.calls != 1 else "")
    )

    # Every table downloads as CSV with the documented columns and the page's figures.
    columns = documented_columns()
    files = {}
    for name, link in [
        ("intervals", "Intervals as CSV"),
        ("calls", "Calls as CSV"),
        ("agents", "Agents as CSV"),
    ]:
        with page.expect_download() as download:
            page.get_by_role("link", name=link, exact=True).click()
        path = tmp_path / f"{name}.csv"
        download.value.save_as(path)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            files[name] = list(csv.DictReader(handle))
            assert list(files[name][0]) == columns[name]
    assert len(files["calls"]) == engine.totals[queue].offered
    assert {row["queue"] for row in files["calls"]} == {str(queue)}
    assert [int(row["offered"]) for row in files["intervals"]] == offered
    assert sum(int(row["calls"]) for row in files["agents"]) == engine.totals[queue].answered
    with page.expect_download() as download:
        drill.get_by_role("link", name="These calls as CSV").click()
    path = tmp_path / "agent.csv"
    download.value.save_as(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == mine.calls and {row["agent"] for row in rows} == {agent}

"""The reports page, its drill-down and its CSV exports over a simulated centre's history: who
may see what, every bad question refused with 400, figures equal to the KPI engine's, and
exports that stream (sync and under ASGI) with the columns docs/reports.md documents."""

from __future__ import annotations

import csv
import io
import json
import re
import tracemalloc
from datetime import date, timedelta

import pytest
import time_machine
from asgiref.sync import sync_to_async
from django.db import connections
from django.urls import reverse

from tests.boards.conftest import QUEUE_A, QUEUE_B
from tests.history_seed import START, history_store, simulated_history
from tests.report_columns import documented_columns
from wallboard.history import selectors
from wallboard.history.models import CallRecord, QueueKpiSettings

pytestmark = pytest.mark.django_db

TODAY = START.date()  # Friday 27 November 2026
QUEUE_C = 102  # in the history, not in the live cache's queue list
URLS = ["reports", "report_calls", "report_intervals_csv", "report_agents_csv", "report_calls_csv"]
CSV_URLS = ["report_intervals_csv", "report_agents_csv", "report_calls_csv"]


@pytest.fixture
def history():
    """Four days of a three-queue centre (100-102), 24-27 November up to 14:30 on the 27th,
    stored through the ingest service; the clock stands at that moment."""
    rows, queues = simulated_history(queues=3, agents=12, days=4, call_rate=0.3)
    history_store(rows, known=queues)
    with time_machine.travel(START, tick=False):
        yield queues


@pytest.fixture
def clock():
    """The clock at the history's last moment, for questions that need no calls."""
    with time_machine.travel(START, tick=False):
        yield


def url(name: str, query: str = "") -> str:
    return reverse(name) + (f"?{query}" if query else "")


def text_of(html: str, figure: str) -> str:
    match = re.search(
        rf'data-figure="{figure}".*?data-f="value">([^<]*)<.*?data-f="previous">([^<]*)<',
        html,
        re.S,
    )
    assert match, f"no figure {figure}"
    return match.group(1)


def count(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def queue_rows(html: str) -> list[int]:
    return [int(q) for q in re.findall(r'<tr data-queue="(\d+)">', html)]


def report_config(html: str) -> dict:
    match = re.search(r'<script id="report-config" type="application/json">(.*?)</script>', html)
    assert match
    return json.loads(match.group(1))


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body(response).decode("utf-8-sig"))))


# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", URLS)
def test_it_sends_anonymous_users_to_the_login_page(client, name):
    response = client.get(url(name))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", URLS)
def test_viewers_get_no_reports(client_for, name, live_data):
    response = client_for("viewer").get(url(name))

    assert response.status_code == 403
    nav = client_for("viewer").get(reverse("home")).content.decode()
    assert reverse("reports") not in nav


def test_a_team_lead_reports_on_their_own_queues(client_for, history, live_data):
    response = client_for("lead").get(url("reports", "range=this_week"))

    html = response.content.decode()
    assert response.status_code == 200
    assert queue_rows(html) == [QUEUE_A]
    assert f'value="{QUEUE_A}"' in html and f'value="{QUEUE_B}"' not in html  # the picker
    engine = selectors.queue_figures(
        queues=[QUEUE_A], date_from=date(2026, 11, 23), date_to=TODAY, interval="day"
    ).totals[QUEUE_A]
    assert count(text_of(html, "offered")) == engine.offered > 0
    assert reverse("reports") in client_for("lead").get(reverse("home")).content.decode()


@pytest.mark.parametrize("name", URLS)
@pytest.mark.parametrize("queues", [f"queue={QUEUE_B}", f"queue={QUEUE_A}&queue={QUEUE_B}"])
def test_a_team_lead_asking_for_another_teams_queue_is_refused(
    client_for, clock, live_data, name, queues
):
    response = client_for("lead").get(url(name, queues))

    assert response.status_code == 403


def test_admins_see_every_queue_also_those_the_pbx_no_longer_lists(client_for, history, live_data):
    html = client_for("group_admin").get(url("reports", "range=this_week")).content.decode()

    assert queue_rows(html) == [QUEUE_A, QUEUE_B, QUEUE_C]
    assert f'value="{QUEUE_C}"' in html  # pickable too
    assert "Sales" in html  # the live cache's name


# --- the figures are the engine's -------------------------------------------------------------


def test_the_page_shows_the_engines_figures_for_the_range(client_for, history, live_data):
    first = date(2026, 11, 23)  # this week: Monday to today, Friday
    html = client_for("admin").get(url("reports", "range=this_week&interval=hour")).content.decode()

    # The queues' own figures through the history's report selector, added up by hand.
    engine = selectors.queue_figures(
        queues=history, date_from=first, date_to=TODAY, interval="hour"
    )
    totals = engine.totals.values()
    offered = sum(t.offered for t in totals)
    assert count(text_of(html, "offered")) == offered
    assert count(text_of(html, "answered")) == sum(t.answered for t in totals)
    assert count(text_of(html, "abandoned")) == sum(t.abandoned for t in totals)
    assert count(text_of(html, "short_abandoned")) == sum(t.short_abandoned for t in totals)
    within = sum(t.answered_within_target for t in totals)
    timed = sum(t.answered - t.wait_unknown for t in totals)  # every wait is known here
    level = round(100 * within / (timed + sum(t.unanswered for t in totals)), 1)
    assert text_of(html, "service_level") == f"{level} %"
    rate = round(100 * sum(t.abandoned for t in totals) / offered, 1)
    assert text_of(html, "abandon_rate") == f"{rate} %"
    longest = max(t.longest_wait for t in totals)
    assert text_of(html, "longest_wait") == f"{longest // 60}:{longest % 60:02d}"
    # Each queue's row is that queue's own total.
    for queue, figures in engine.totals.items():
        row = html[html.index(f'<tr data-queue="{queue}">') :]
        assert re.search(rf'data-f="offered">{figures.offered}<', row)
    # The drill-down and the exports ask for the days on the page, whatever "this week" will
    # mean when they are clicked.
    pinned = "range=custom&amp;date_from=2026-11-23&amp;date_to=2026-11-27&amp;interval=hour"
    assert f'href="{reverse("report_calls_csv")}?{pinned}"' in html
    assert report_config(html)["calls_url"].endswith(pinned.replace("&amp;", "&"))
    # The charts get the same calls: per hour of the range and per hour of the day.
    charts = report_config(html)["charts"]
    assert len(charts["periods"]) == 5 * 24
    assert sum(charts["offered"]) == sum(charts["hours"]["offered"]) == offered
    per_hour = [sum(engine.figures[q][i].offered for q in history) for i in range(5 * 24)]
    assert charts["offered"] == per_hour
    assert all(
        a + b + c == o
        for a, b, c, o in zip(
            charts["answered"], charts["abandoned"], charts["other"], charts["offered"], strict=True
        )
    )


def test_today_is_compared_with_yesterday_until_the_same_time(client_for, history, live_data):
    html = client_for("admin").get(url("reports", "range=today")).content.decode()

    yesterday = TODAY - timedelta(days=1)
    until = START - timedelta(days=1)
    earlier = CallRecord.objects.filter(day=yesterday, queue__isnull=False, when__lt=until)
    all_day = CallRecord.objects.filter(day=yesterday, queue__isnull=False)
    assert 0 < earlier.count() < all_day.count()
    match = re.search(r'data-figure="offered".*?data-f="previous">([^<]*)<', html, re.S)
    assert count(match.group(1)) == earlier.count()  # default rules: every queue call is offered
    assert "until 14:30" in html


def test_queues_with_different_rules_are_added_up_each_by_its_own(client_for, history, live_data):
    QueueKpiSettings.objects.create(queue=QUEUE_B, service_level_formula="answered")
    html = client_for("admin").get(url("reports", "range=this_week")).content.decode()

    assert "each queue by its own formula and target" in html
    assert "count the service level differently" in html
    assert "answered within 20 s ÷ answered" in html  # queue B's row


# --- bad questions: 400 with the reason, never a 500 -------------------------------------------

BAD = [
    ("range=custom&date_from=2026-13-01&date_to=2026-11-27", "Enter a valid date"),
    (
        "range=custom&date_from=2026-11-27&date_to=2026-11-20",
        "The start date is after the end date",
    ),
    ("range=custom&date_from=2026-11-01", "A custom range needs a start and an end date"),
    ("range=custom&date_from=1999-12-30&date_to=1999-12-31", "greater than or equal to"),
    ("range=fortnight", "Select a valid choice"),
    ("interval=fortnight", "Select a valid choice"),
    ("range=custom&date_from=2026-01-01&date_to=2026-12-31&interval=15min", "too long a range"),
    ("range=this_month&interval=15min&date_from=x", "Enter a valid date"),
    ("queue=abc", "is not a queue number"),
    ("queue=0", "is not a queue number"),
    ("queue=99999999999", "is not a queue number"),
    ("queue=" + ",".join(str(n) for n in range(1, 202)), "At most 200 queues"),
]


@pytest.mark.parametrize(("query", "message"), BAD)
def test_the_page_refuses_a_bad_question_with_its_reason(client_for, clock, query, message):
    response = client_for("admin").get(url("reports", query))

    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'role="alert"' in html and "report-config" not in html


@pytest.mark.parametrize(("query", "message"), BAD)
@pytest.mark.parametrize("name", CSV_URLS)
def test_the_exports_refuse_a_bad_question_with_its_reason(client_for, clock, name, query, message):
    if name == "report_calls_csv" and "too long" in message:
        return  # the calls export takes any range: its rows do not depend on the interval
    response = client_for("admin").get(url(name, query))

    assert response.status_code == 400
    assert message in response.content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("range=today&period=999", "The report has no period 999"),
        ("range=today&period=-1", "The report has no period -1"),
        ("range=today&period=1&page=abc", "The page must be a number"),
        ("range=today&period=1&page=0", "Pages start at 1"),
        ("range=today&period=1&page=99999999999999999999", "The page must be a number"),
        ("range=today&period=99999999999999999999", "The report has no period"),
        ("range=today&date_from=2026-13-01&range=custom", "Enter a valid date"),
    ],
)
def test_the_drill_down_refuses_what_the_report_has_not(client_for, clock, query, message):
    response = client_for("admin").get(url("report_calls", query))

    assert response.status_code == 400
    assert message in response.content.decode()


def test_a_long_range_at_a_coarse_interval_is_answered(client_for, history):
    query = "range=custom&date_from=2024-01-01&date_to=2026-12-31&interval=month"
    response = client_for("admin").get(url("reports", query))

    assert response.status_code == 200
    assert len(report_config(response.content.decode())["charts"]["periods"]) == 36


# --- drill-down ---------------------------------------------------------------------------------


def test_a_periods_calls_are_the_calls_its_figures_count(client_for, history):
    query = "range=custom&date_from=2026-11-26&date_to=2026-11-26&interval=hour"
    report = selectors.queue_figures(
        queues=history, date_from=date(2026, 11, 26), date_to=date(2026, 11, 26), interval="hour"
    )
    offered = [sum(report.figures[q][hour].offered for q in history) for hour in range(24)]
    busiest = max(range(24), key=lambda hour: offered[hour])
    assert offered[busiest] > 50  # more than one page

    first = client_for("admin").get(url("report_calls", f"{query}&period={busiest}"))
    second = client_for("admin").get(url("report_calls", f"{query}&period={busiest}&page=2"))

    html = first.content.decode()
    assert first.status_code == second.status_code == 200
    assert f"{offered[busiest]} calls" in html
    assert f"{busiest:02d}:00 to {busiest + 1:02d}:00" in html
    shown = re.findall(r'<tr data-call="(\d+)"', html) + re.findall(
        r'<tr data-call="(\d+)"', second.content.decode()
    )
    assert len(shown) == min(offered[busiest], 100)
    assert len(set(shown)) == len(shown)
    assert "Page 1 of" in html


def test_an_agents_calls_are_those_they_answered(client_for, history):
    report = selectors.report_figures(
        queues=history, date_from=date(2026, 11, 23), date_to=TODAY, interval="day"
    )
    agent = report.agents[0]

    response = client_for("admin").get(url("report_calls", f"range=this_week&agent={agent.agent}"))

    html = response.content.decode()
    assert f"{agent.calls} calls" in html
    assert set(re.findall(r'data-outcome="(\w+)"', html)) == {"answered"}


# --- CSV ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "table"), [(n, n.split("_")[1]) for n in CSV_URLS])
def test_every_export_has_the_documented_columns(client_for, history, name, table):
    response = client_for("admin").get(url(name, "range=this_week"))

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="{table}_2026-11-23_2026-11-27.csv"'
    )
    raw = body(response)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == documented_columns()[table]
    assert len(rows) > 2
    assert all(len(row) == len(rows[0]) for row in rows)


def test_the_exports_hold_the_pages_figures(client_for, history):
    query = "range=this_week&interval=day"
    report = selectors.report_figures(
        queues=history, date_from=date(2026, 11, 23), date_to=TODAY, interval="day"
    )

    intervals = csv_rows(client_for("admin").get(url("report_intervals_csv", query)))
    agents = csv_rows(client_for("admin").get(url("report_agents_csv", query)))
    calls = csv_rows(client_for("admin").get(url("report_calls_csv", query)))

    header = intervals[0]
    together = [dict(zip(header, row, strict=True)) for row in intervals[1:] if row[3] == "all"]
    assert len(together) == 5  # Monday to Friday
    assert sum(int(row["offered"]) for row in together) == report.selection_total.offered
    assert len(intervals) == 1 + 5 * 4  # three queues and "all" per day
    assert [row[0] for row in agents[1:]] == [a.agent for a in report.agents]
    assert len(calls) - 1 == report.selection_total.offered  # every queue call, once
    starts = [row[1] for row in calls[1:]]
    assert starts == sorted(starts)  # oldest first
    assert {row[5] for row in calls[1:]} <= {
        "answered",
        "abandoned",
        "voicemail",
        "timeout",
        "busy",
    }


def test_a_drill_downs_export_holds_its_calls(client_for, history):
    agent = CallRecord.objects.filter(outcome="answered").values_list("agent", flat=True)[0]

    rows = csv_rows(
        client_for("admin").get(url("report_calls_csv", f"range=this_week&agent={agent}"))
    )

    assert len(rows) > 1
    assert {row[9] for row in rows[1:]} == {agent}


def ten_years_of_history(queues) -> int:
    """The four simulated days, copied into every year from 2017 to 2026 (new ids)."""
    rows, _ = simulated_history(queues=3, agents=12, days=4, call_rate=0.3)
    stored = 0
    for years_back in range(1, 10):
        copies = []
        for row in rows:
            when = row["when"].replace("2026", str(2026 - years_back), 1)
            copies.append(
                {**row, "id": str(int(row["id"]) + years_back * 10_000_000), "when": when}
            )
        stored += history_store(copies, known=queues)
    return stored


def streamed(client, query: str) -> tuple[int, int, int]:
    """(lines, chunks, peak bytes allocated) of a calls export read to the end."""
    tracemalloc.start()
    try:
        response = client.get(url("report_calls_csv", query))
        lines = chunks = 0
        for chunk in response.streaming_content:
            chunks += 1
            lines += chunk.count(b"\r\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return lines, chunks, peak


def test_ten_years_of_calls_stream_in_little_memory(client_for, history):
    ten_years_of_history(history)
    client = client_for("admin")

    streamed(client, "range=custom&date_from=2026-11-24&date_to=2026-11-24")  # lazy imports, caches
    one_year = streamed(client, "range=custom&date_from=2026-01-01&date_to=2026-12-31")
    ten_years = streamed(client, "range=custom&date_from=2017-01-01&date_to=2026-12-31")

    total = CallRecord.objects.filter(queue__isnull=False).count()
    assert ten_years[0] == total + 1  # the header and every queue call of the ten years
    assert one_year[0] - 1 == total // 10
    assert ten_years[1] > 10 * one_year[1] // 2
    # Read a day at a time and sent in chunks: ten times the calls, not ten times the memory.
    assert ten_years[2] < 2 * one_year[2], (one_year, ten_years)


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_export_streams_through_an_async_iterator(async_client, users):
    rows, queues = simulated_history(queues=3, agents=12, days=4, call_rate=0.3)
    await sync_to_async(history_store)(rows, known=queues)
    await async_client.aforce_login(users["admin"])

    try:
        with time_machine.travel(START, tick=False):
            response = await async_client.get(url("report_calls_csv", "range=this_week"))
        chunks = [chunk async for chunk in response.streaming_content]
        offered = await sync_to_async(CallRecord.objects.filter(queue__isnull=False).count)()
    finally:
        # The export's steps ran in asgiref's thread: its connection must not outlive the test
        # (PostgreSQL would not drop the test database while it is open).
        await sync_to_async(connections.close_all)()

    assert response.status_code == 200
    assert response.is_async  # Django would have read a plain iterator into a list first
    assert len(chunks) > 2
    text = b"".join(chunks).decode("utf-8-sig")
    assert text.count("\r\n") == offered + 1

"""Reports page benchmark: the page's first paint for a week and for a month of 20 queues, and
the CSV export of about 100,000 calls, against a real Daphne over a seeded history.

The history is the PBX simulator's own CDR (its history sweep: 20 queues, about 100,000 queue
calls a month at the default call rate), stored through the product's ingest service into a
throw-away SQLite file (or a database made on a PostgreSQL server and dropped at the end): two
months, so the previous period a report compares with is full too. Then Daphne serves the
product as in production (DEBUG off), and it prints

- server render: the whole HTTP response of /reports/ (best and median of --repeat runs after
  one warm-up) for a week at days and hours and a month at days and 15 minutes;
- browser: in Chromium, the server's response end, the first contentful paint and the moment
  the four charts are drawn (the page's `reports-charts-drawn` mark), from navigation start;
- CSV: /reports/calls.csv of the month (twice) and of ten years streamed to the end: rows,
  size, first byte, total, and Daphne's resident memory before and at its peak (sampled every
  5 ms) while it streamed.

Goals (docs/reports.md): a week painted with data in <= 1 s, a month at 15 minutes in <= 2 s.

    python bench/reports.py                     # SQLite
    python bench/reports.py --postgresql postgresql://postgres@127.0.0.1/postgres
    python bench/reports.py --call-rate 0.03 --repeat 2      # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    Workspace,
    daphne_argv,
    django_shell,
    free_port,
    machine_facts,
    manage,
    table,
    throwaway_postgres,
    wallboard_env,
)

ZONE = ZoneInfo("Europe/Bratislava")
PASSWORD = uuid.uuid4().hex
CHROMIUM = "/usr/bin/chromium"

# Runs inside `manage.py shell` against the benchmark's database: the simulator's CDR of the
# days before today, stored a PBX page (3,000 rows) at a time through the ingest service.
SEED = """
import time
from django.contrib.auth import get_user_model
from django.utils import timezone
from pbxapi.simulator import SimulatorConfig
from pbxapi.simulator.centre import CallCentre
from wallboard.history.models import CallRecord
from wallboard.history.selectors import pbx_zone
from wallboard.history.services import call_records_upsert

began = time.perf_counter()
centre = CallCentre(SimulatorConfig(
    queues={queues}, agents={agents}, history_days={days}, call_rate={call_rate}, seed=7,
    start_time={start}, autopilot=False,
))
known = set(centre.queue_numbers())
rows = 0
while True:
    page = centre.cdr_rows(limit=3000, offset=rows)
    call_records_upsert(rows=page, known=known, zone=pbx_zone(), stored_at=timezone.now())
    rows += len(page)
    if len(page) < 3000:
        break
get_user_model().objects.create_superuser("bench", password={password!r})
calls = CallRecord.objects.filter(queue__isnull=False).count()
print(rows, calls, round(time.perf_counter() - began, 1))
"""
COUNT = """
from wallboard.history.models import CallRecord
from wallboard.history.intervals import days_of
from datetime import date
days = days_of(date.fromisoformat({first!r}), date.fromisoformat({last!r}))
print(CallRecord.objects.filter(day__in=days, queue__isnull=False).count())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--call-rate", type=float, default=0.15, help="simulator calls/min/queue")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgresql", metavar="URL", help="a server; a throw-away database")
    parser.add_argument("--keep", action="store_true", help="keep the logs and the database")
    args = parser.parse_args()

    print(machine_facts())
    with Workspace("reports", keep=args.keep) as ws:
        database_url, drop = _database(args.postgresql, ws.dir)
        try:
            _run(args, ws, database_url)
        finally:
            drop()


def _database(server: str | None, directory: Path):
    if not server:
        return f"sqlite://{directory / 'bench.sqlite3'}", lambda: None
    return throwaway_postgres(server, "bench_reports")


def _run(args: argparse.Namespace, ws: Workspace, database_url: str) -> None:
    import psutil
    import requests

    env = wallboard_env(
        ws,
        pbx_url="http://127.0.0.1:9/",  # never asked: reports read the history only
        pbx_user="bench",
        pbx_password=uuid.uuid4().hex,
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY=uuid.uuid4().hex,
        STATIC_MANIFEST="0",
        ALLOWED_HOSTS="127.0.0.1",
    )
    manage(env, "migrate", "--verbosity=0", timeout=300)
    today = datetime.now(ZONE).date()
    last = today - timedelta(days=1)
    month = (last - timedelta(days=30), last)
    week = (last - timedelta(days=6), last)
    midnight = datetime.combine(today, datetime.min.time(), ZONE).timestamp()
    seed = SEED.format(
        queues=args.queues,
        agents=args.agents,
        days=63,  # 62 whole days before today: the month and the one before it, + today
        call_rate=args.call_rate,
        start=midnight,
        password=PASSWORD,
    )
    rows, calls, seconds = django_shell(env, seed, timeout=1800).split()[-3:]
    counted = django_shell(env, COUNT.format(first=month[0].isoformat(), last=month[1].isoformat()))
    in_month = int(counted.split()[-1])  # the last line: Django's shell may print its own first
    kind = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    print(
        f"history    {kind}: {int(rows):,} CDR rows, {int(calls):,} queue calls over 62 days "
        f"({args.queues} queues), stored in {seconds} s; the month {month[0]} .. {month[1]} "
        f"holds {in_month:,} queue calls"
    )

    port = free_port()
    daphne = ws.child("daphne", daphne_argv("wallboard.asgi:application", port), env=env)
    daphne.wait_for_port(port)
    base = f"http://127.0.0.1:{port}"
    server = psutil.Process(daphne.pid)

    cases = [
        ("week, days", week, "day"),
        ("week, hours", week, "hour"),
        ("month, days", month, "day"),
        ("month, 15 minutes", month, "15min"),
    ]

    def page_url(days: tuple[date, date], interval: str) -> str:
        return (
            f"{base}/reports/?range=custom&date_from={days[0]}&date_to={days[1]}"
            f"&interval={interval}"
        )

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="en-GB")
        page = context.new_page()
        page.goto(f"{base}/login/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{base}/")
        session = requests.Session()
        for cookie in context.cookies():
            session.cookies.set(cookie["name"], cookie["value"])

        rows_out = []
        for name, days, interval in cases:
            times, size = [], 0
            peak = Peak(server)
            for run in range(args.repeat + 1):
                began = time.perf_counter()
                response = session.get(page_url(days, interval), timeout=120)
                elapsed = time.perf_counter() - began
                response.raise_for_status()
                size = len(response.content)
                if run:  # the first run warms the process up
                    times.append(elapsed)
            peak.stop()
            rows_out.append(
                [name, min(times), statistics.median(times), f"{size / 1024:.0f} KiB",
                 f"{peak.peak_mib:.0f}"]
            )  # fmt: skip
        print()
        print(
            table(
                f"server render: the whole response of /reports/ ({args.repeat} runs)",
                ["page", "best s", "median s", "HTML", "Daphne RSS peak MiB"],
                rows_out,
            )
        )

        rows_out = []
        for name, days, interval in [cases[0], cases[3]]:
            marks = {"response": [], "fcp": [], "charts": []}
            for _ in range(args.repeat):
                fresh = context.new_page()
                fresh.goto(page_url(days, interval))
                fresh.wait_for_selector("body[data-charts=ready]")
                found = fresh.evaluate(BROWSER_MARKS)
                for key in marks:
                    marks[key].append(found[key] / 1000)
                fresh.close()
            rows_out.append([name] + [statistics.median(marks[key]) for key in marks])
        print()
        print(
            table(
                f"browser (Chromium), from navigation start, median of {args.repeat}",
                ["page", "response end s", "first paint s", "charts drawn s"],
                rows_out,
            )
        )
        browser.close()

    print()
    exports = [
        ("the month", month),
        ("the month", month),
        ("ten years", (last - timedelta(days=3652), last)),  # 3,653 days, two months of calls
    ]
    rows_out = []
    for label, (first_day, last_day) in exports:
        csv_url = f"{base}/reports/calls.csv?range=custom&date_from={first_day}&date_to={last_day}"
        before = server.memory_info().rss
        peak = Peak(server)
        began = time.perf_counter()
        first_byte = None
        size = lines = 0
        with session.get(csv_url, stream=True, timeout=600) as response:
            response.raise_for_status()
            for chunk in response.iter_content(chunk_size=65536):
                if first_byte is None:
                    first_byte = time.perf_counter() - began
                size += len(chunk)
                lines += chunk.count(b"\n")
        total = time.perf_counter() - began
        peak.stop()
        rows_out.append(
            [label, f"{lines - 1:,}", f"{size / 2**20:.1f} MiB", first_byte, total,
             f"{(lines - 1) / total:,.0f}", f"{before / 2**20:.0f}", f"{peak.peak_mib:.0f}",
             f"{peak.peak_mib - before / 2**20:+.0f}"]
        )  # fmt: skip
    print(
        table(
            "CSV export of calls (/reports/calls.csv), streamed to the end",
            [
                "range",
                "calls",
                "size",
                "first byte s",
                "total s",
                "rows/s",
                "RSS before MiB",
                "RSS peak MiB",
                "growth MiB",
            ],
            rows_out,
        )
    )


BROWSER_MARKS = """() => new Promise((resolve) => {
  // The paint entry is recorded asynchronously: wait for it (buffered), at most 3 s.
  const read = () => {
    const nav = performance.getEntriesByType("navigation")[0];
    const paint = performance.getEntriesByName("first-contentful-paint")[0];
    const charts = performance.getEntriesByName("reports-charts-drawn")[0];
    resolve({ response: nav.responseEnd, fcp: paint ? paint.startTime : NaN,
              charts: charts ? charts.startTime : NaN });
  };
  new PerformanceObserver((list) => {
    if (list.getEntriesByName("first-contentful-paint").length) read();
  }).observe({ type: "paint", buffered: true });
  setTimeout(read, 3000);
})"""


class Peak:
    """The highest resident memory of a process, sampled every 5 ms in a thread until stop()."""

    def __init__(self, process) -> None:
        self.process = process
        self.peak = process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20


if __name__ == "__main__":
    main()

"""KPI report benchmark: a month of call history (100,000 rows, 20 queues) reported at 15-minute
intervals, on SQLite and on PostgreSQL. Goal: <= 1 s for the whole report (read + engine).

The rows are written through the product's own ingest path (``services.call_records_upsert``,
3,000 rows a page as the PBX pages them) into a throw-away database: a temporary SQLite file, or
a database created on the PostgreSQL server and dropped at the end. Then each report is run
several times and its best and median wall times are printed, split into the database read
(``values_list``) and the engine.

    python bench/kpi_report.py                               # SQLite
    python bench/kpi_report.py --postgresql postgresql://postgres@127.0.0.1/postgres
    python bench/kpi_report.py --rows 20000 --repeat 3       # a smoke run
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import machine_facts, throwaway_postgres

ZONE = ZoneInfo("Europe/Bratislava")
FIRST_DAY = date(2026, 10, 1)  # October: the autumn DST change is in the month


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--postgresql", metavar="URL", help="a server URL; a throw-away database is made on it"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-kpi-") as var_dir:
        database_url, drop = _database(args.postgresql, var_dir)
        os.environ.update(
            DEBUG="1",
            DJANGO_SETTINGS_MODULE="wallboard.settings",
            WALLBOARD_VAR_DIR=var_dir,
            DATABASE_URL=database_url,
            LOG_LEVEL="WARNING",
        )
        try:
            _run(args)
        finally:
            drop()


def _database(server: str | None, var_dir: str):
    if not server:
        return f"sqlite://{var_dir}/bench.sqlite3", lambda: None
    return throwaway_postgres(server, "bench_kpi")


def _run(args: argparse.Namespace) -> None:
    # Django reads DATABASE_URL and the rest when it is set up: imported after main() set them.
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from wallboard.history import selectors, services
    from wallboard.history.kpi import queue_report

    call_command("migrate", verbosity=0)
    queues = list(range(100, 100 + args.queues))
    rows = _rows(args.rows, queues, args.days)
    started = time.perf_counter()
    for start in range(0, len(rows), 3000):
        services.call_records_upsert(
            rows=rows[start : start + 3000], known=set(queues), zone=ZONE, stored_at=timezone.now()
        )
    stored = time.perf_counter() - started
    last_day = FIRST_DAY + timedelta(days=args.days - 1)

    version = (
        connection.Database.sqlite_version
        if connection.vendor == "sqlite"
        else connection.cursor().connection.info.server_version
    )
    print(machine_facts())
    print(f"database   {connection.vendor} {version}")
    print(f"history    {len(rows):,} rows, {args.queues} queues, {FIRST_DAY} .. {last_day}")
    print(f"ingest     {len(rows) / stored:,.0f} rows/s through call_records_upsert")
    print()

    def read() -> list:
        return list(selectors._facts(date_from=FIRST_DAY, date_to=last_day, queues=queues))

    facts = read()
    rules = selectors.kpi_rules_get(queues=queues)

    def engine(interval: str):
        return queue_report(
            facts,
            rules=rules,
            date_from=FIRST_DAY,
            date_to=last_day,
            interval=interval,
            zone=ZONE,
        )

    cases = [
        ("read: values_list of the month", read),
        ("engine: 15-minute report", lambda: engine("15min")),
        (
            "queue_figures, 15 minutes (goal <= 1 s)",
            lambda: selectors.queue_figures(
                queues=queues, date_from=FIRST_DAY, date_to=last_day, interval="15min"
            ),
        ),
        (
            "queue_figures, day",
            lambda: selectors.queue_figures(
                queues=queues, date_from=FIRST_DAY, date_to=last_day, interval="day"
            ),
        ),
        (
            "agent_figures, month",
            lambda: selectors.agent_figures(date_from=FIRST_DAY, date_to=last_day, queues=queues),
        ),
        (
            "queue_figures_today (one day)",
            lambda: selectors.queue_figures_today(
                queues=queues, now=datetime.combine(last_day, datetime.min.time(), ZONE)
            ),
        ),
    ]
    print(f"{'what':44} {'best':>8} {'median':>8}   ({args.repeat} runs)")
    for name, case in cases:
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            case()
            times.append(time.perf_counter() - began)
        print(f"{name:44} {min(times):7.3f}s {statistics.median(times):7.3f}s")
    report = selectors.queue_figures(
        queues=queues, date_from=FIRST_DAY, date_to=last_day, interval="15min"
    )
    print()
    print(
        f"report     {len(report.periods):,} periods x {len(report.figures)} queues; "
        f"offered {sum(t.offered for t in report.totals.values()):,}"
    )


def _rows(count: int, queues: list[int], days: int) -> list[dict]:
    """Queue calls spread over the days' office hours, shaped as the PBX sends them."""
    rng = random.Random(7)
    first = datetime.combine(FIRST_DAY, datetime.min.time(), ZONE).timestamp()
    rows = []
    for number in range(1, count + 1):
        day = rng.randrange(days)
        moment = datetime.fromtimestamp(
            first + day * 86400 + rng.uniform(7 * 3600, 19 * 3600), ZONE
        )
        queue = rng.choice(queues)
        roll = rng.random()
        wait = int(rng.expovariate(1 / 30))
        talk = int(rng.lognormvariate(4.6, 0.7))
        application, status, duration = "queue", "answered", talk
        if roll < 0.12:
            application, status, duration = "queue", "missed", 0
        elif roll < 0.14:
            application, status, duration, wait = "hangup", "missed", 0, 480
        elif roll < 0.16:
            application, status, duration, wait = "voicemail", "answered", 20, 480
        elif roll < 0.18:
            application, status, duration, wait = "queue", "busy", 0, 0
        agent = str(200 + rng.randrange(1, 60)) if status == "answered" else str(queue)
        rows.append(
            {
                "id": str(number),
                "type": "incoming",
                "when": moment.strftime("%Y-%m-%d %H:%M:%S"),
                "caller": f"00421903{rng.randrange(10**6):06d}",
                "caller_name": None,
                "received": str(queue),
                "received_name": None,
                "destination": agent,
                "destination_name": f"Agent {agent}",
                "duration": str(duration),
                "application": application,
                "status": status,
                "recording_file": "",
                "unique_id": f"{int(moment.timestamp())}.{number}",
                "complete_duration": str(wait + duration),
            }
        )
    return rows


if __name__ == "__main__":
    main()

"""Call-history import benchmark: a simulated month of call records (about 100,000 rows, 20
queues) imported with `manage.py cdr_import` (its own process, as an operator runs it) through
the shared PBX budget at the real limit (18 of the PBX's 20 requests per 5 s), while the live
poller keeps the boards fresh.

It prints how many PBX requests the import took and how long, the most requests the simulator
saw in any 5 s (never over 20, no 403), and the boards' refresh period before the import (the
poller alone, --baseline seconds) and during it, each against the best the budget allows
((Q + 1) / B for Q watched queues), so "the import never slows the live boards" is a figure,
not a hope.

    python bench/cdr_import.py                      # a month, SQLite
    python bench/cdr_import.py --postgresql postgresql://postgres@127.0.0.1/postgres
    python bench/cdr_import.py --days 3                        # a smoke run
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    ROOT,
    machine_facts,
    percentile,
    redis_delete_prefix,
    table,
    unique_prefix,
)
from bench.kpi_report import _database

WATCHED = 4  # queues on open boards during the import
SIM_USER, SIM_SECRET = "bench", "bench-simulator"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=31, help="days before today (and today)")
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--agents", type=int, default=60)
    parser.add_argument(
        "--call-rate",
        type=float,
        default=0.11,
        help="the simulator's calls per minute per queue, averaged over a day (0.11: about "
        "100,000 records a month for 20 queues)",
    )
    parser.add_argument(
        "--baseline", type=float, default=120.0, help="seconds of polling alone, before"
    )
    parser.add_argument("--postgresql", metavar="URL", help="a PostgreSQL server URL")
    args = parser.parse_args()
    print(machine_facts(), flush=True)
    prefix = unique_prefix("import")
    with tempfile.TemporaryDirectory(prefix="bench-import-") as var_dir:
        database_url, drop = _database(args.postgresql, var_dir)
        os.environ.update(
            DEBUG="1",
            DJANGO_SETTINGS_MODULE="wallboard.settings",
            WALLBOARD_VAR_DIR=var_dir,
            DATABASE_URL=database_url,
            REDIS_KEY_PREFIX=prefix,
            LOG_LEVEL="WARNING",
        )
        try:
            _run(args)
        finally:
            drop()
            redis_delete_prefix(prefix)


def _run(args: argparse.Namespace) -> None:
    import django

    from pbxapi.simulator import SimulatorConfig, start_simulator

    sim = start_simulator(
        SimulatorConfig(
            port=0,
            user=SIM_USER,
            password=SIM_SECRET,
            queues=args.queues,
            agents=args.agents,
            history_days=args.days + 1,
            call_rate=args.call_rate,
            weekends=False,
            autopilot=True,
            warmup_seconds=0,
        )
    )
    os.environ.update(PBX_API_URL=sim.url, PBX_API_USER=SIM_USER, PBX_API_PASSWORD=SIM_SECRET)
    django.setup()
    from django.core.management import call_command

    from wallboard.live import poller, services, store
    from wallboard.live.pbx import pbx_budget
    from wallboard.live.store import SOURCE_QUEUES

    call_command("migrate", verbosity=0)
    pbx_budget().declare_unused()  # a simulator that just started has counted nothing
    services.source_fetch(SOURCE_QUEUES, priority="background")
    queues = sorted(q["queue"] for q in store.known_queues())
    watched = queues[:WATCHED]
    stored_rows = sim.centre.cdr_count()
    print(
        f"simulator: {len(queues)} queues, {stored_rows:,} call records over "
        f"{args.days + 1} days; boards watch {len(watched)} queues",
        flush=True,
    )

    # The live path, as the worker runs it, while the import goes on.
    stop = threading.Event()

    def boards() -> None:
        while not stop.is_set():
            store.watch_register("bench-board", watched, ttl=30)
            report = poller.poll_tick()
            if report.failed:
                print(f"poll: {report.failed}", flush=True)

    live = threading.Thread(target=boards, name="poller", daemon=True)
    live.start()
    time.sleep(10)  # the boards are being refreshed before anything is measured
    baseline_start = len(sim.requests_log)
    time.sleep(args.baseline)
    import_start = len(sim.requests_log)
    today = _today()
    first = today - timedelta(days=args.days)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "manage.py", "cdr_import", "--from", first.isoformat(),
         "--to", today.isoformat()],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    stop.set()
    live.join(timeout=30)
    if result.returncode != 0:
        raise SystemExit(f"cdr_import failed ({result.returncode}): {result.stderr.strip()}")

    log = list(sim.requests_log)
    cdr_requests = [entry for entry in log[import_start:] if entry[3].startswith("/api/cdr")]
    print(result.stdout.strip())
    stored, requests = _stored(), len(cdr_requests)
    print(table(
        "import",
        ["rows stored", "PBX CDR requests", "wall time s", "rows per request"],
        [[stored, requests, f"{elapsed:.1f}", f"{stored / max(1, requests):.0f}"]],
    ))  # fmt: skip
    print(_limit_report(log[baseline_start:]))
    print(_freshness(
        [("polling alone", log[baseline_start:import_start]),
         ("during the import", log[import_start:])],
        watched,
    ))  # fmt: skip
    sim.stop()


def _today():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from django.conf import settings

    return datetime.now(ZoneInfo(settings.PBX_TIME_ZONE)).date()


def _stored() -> int:
    from wallboard.history.models import CallRecord

    return CallRecord.objects.count()


def _limit_report(log: list) -> str:
    """The most requests the PBX saw in any 5 s, and its 403s."""
    times = sorted(entry[0] for entry in log)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] > 5.0:
            start += 1
        most = max(most, end - start + 1)
    forbidden = sum(1 for entry in log if entry[4] == 403)
    return table(
        "the PBX's limit", ["most requests in any 5 s", "limit", "403s"], [[most, 20, forbidden]]
    )


def _freshness(phases: list[tuple[str, list]], watched: list[int]) -> str:
    """How often the boards were refreshed in each phase: the time between two
    call/statistics requests, which go round once with the watched queues' statuses, against
    (Q + 1) / B for Q watched queues and B = 17 polls per 5 s (the polls' share). The unwatched
    queues (polled every 30 s, all due together) make some rounds longer, so even the poller
    alone has a p95 above the bound; the mean and the polls' rate (status and statistics
    requests a second) say whether the boards lost any of their share."""
    bound = (len(watched) + 1) / (17 / 5.0)
    rows = []
    for name, log in phases:
        times = [entry[0] for entry in log if entry[3] == "/api/call/statistics"]
        polls = [e for e in log if e[3] in ("/api/call/statistics", "/api/queue/status")]
        span = (log[-1][0] - log[0][0]) if len(log) > 1 else 0.0
        rate = f"{len(polls) / span:.2f}" if span else "-"
        periods = [b - a for a, b in itertools.pairwise(times)]
        if not periods:
            rows.append([name, "-", "-", "-", "-", f"{bound:.2f}", "-", "-", rate])
            continue
        median, p95 = statistics.median(periods), percentile(periods, 95)
        rows.append([
            name, f"{median:.2f}", f"{statistics.mean(periods):.2f}", f"{p95:.2f}",
            f"{max(periods):.2f}", f"{bound:.2f}", f"{median / bound:.2f}", f"{p95 / bound:.2f}",
            rate,
        ])  # fmt: skip
    return table(
        "the boards' refresh period (s)",
        ["phase", "median", "mean", "p95", "max", "(Q+1)/B", "median / bound", "p95 / bound",
         "polls/s"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()

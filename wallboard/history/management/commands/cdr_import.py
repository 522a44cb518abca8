"""`manage.py cdr_import --from 2026-10-01 --to 2026-11-30 [--again]`: store the PBX's call
records of a range of days, oldest day first.

It shares the PBX request budget with everything else: on the background lane, one request at a
time, each a budget window after the previous one ended, so it uses at most the one slot the
live polls leave idle and the boards keep their pace; it can run beside `make run` or
production. Days already settled are skipped (`--again` reads them again, picking up rows that
changed since, such as deleted recordings). Ctrl-C stops it cleanly; running the same command
again resumes where it stopped, to the row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from redis import RedisError

from pbxapi import errors as pbx
from wallboard.history.intervals import days_of, local_today
from wallboard.history.selectors import pbx_zone
from wallboard.history.services import (
    DayRead,
    backfill_pace,
    call_records_attribute,
    cdr_day_read,
)
from wallboard.live.selectors import known_queue_numbers

# How long one request may wait for a budget slot before the command says it is waiting.
REQUEST_MAX_WAIT_SECONDS = 30.0


class Progress:
    """One progress line on stderr: rewritten in place on a terminal, a line per day otherwise."""

    def __init__(self, stream, *, days: int) -> None:
        self.stream = stream
        self.days = days
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.done = 0
        self.rows = 0
        self.requests = 0
        self.skipped_days = 0
        self.current: DayRead | None = None
        self.note = ""

    def page(self, read: DayRead) -> None:
        self.current = read
        self.note = ""
        if self.tty:
            self._show()

    def waiting(self) -> None:
        self.note = "waiting for a request slot"
        if self.tty:
            self._show()

    def day_done(self, read: DayRead) -> None:
        self.current = None
        self.done += 1
        self.rows += read.rows
        self.requests += read.requests
        if read.requests == 0:
            self.skipped_days += 1
        self._show(day=read.day)

    def rows_read(self) -> int:
        """Rows of the finished days and of the day being read."""
        return self.rows + (self.current.rows if self.current else 0)

    def requests_sent(self) -> int:
        return self.requests + (self.current.requests if self.current else 0)

    def _show(self, day: date | None = None) -> None:
        rows, requests = self.rows_read(), self.requests_sent()
        elapsed = time.monotonic() - self.started
        eta = "--:--"
        if self.done and self.done < self.days:
            eta = _clock(elapsed / self.done * (self.days - self.done))
        elif self.done >= self.days:
            eta = "done"
        current = day or (self.current.day if self.current else None)
        line = (
            f"days {self.done}/{self.days}"
            + (f" ({current})" if current else "")
            + f"  rows {rows:,}  requests {requests}  elapsed {_clock(elapsed)}  ETA {eta}"
            + (f"  {self.note}" if self.note else "")
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + line, ending="")
            self.stream.flush()
        elif day is not None:
            self.stream.write(line)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def import_range_check(date_from: date, date_to: date, *, today: date, keep_days: int) -> None:
    """Refuse a reversed range, days after today, and days the retention would delete."""
    if date_to < date_from:
        raise CommandError(f"--to {date_to} is before --from {date_from}")
    if date_to > today:
        raise CommandError(
            f"--to {date_to} is in the future (today is {today} in the PBX's time zone)"
        )
    if keep_days > 0 and date_from < today - timedelta(days=keep_days):
        raise CommandError(
            f"--from {date_from} is older than the retention keeps "
            f"(CDR_RETENTION_DAYS={keep_days}: from {today - timedelta(days=keep_days)})"
        )


class Command(BaseCommand):
    help = (
        "Store the PBX's call records of a range of days (oldest first) through the shared "
        "request budget; settled days are skipped, Ctrl-C stops, running again resumes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="date_from", required=True, help="First day.")
        parser.add_argument("--to", dest="date_to", required=True, help="Last day (included).")
        parser.add_argument(
            "--again",
            action="store_true",
            help="Read settled days again (rows changed since are updated).",
        )

    def handle(self, *args, date_from: str, date_to: str, again: bool, **options) -> None:
        first, last = _date(date_from, "--from"), _date(date_to, "--to")
        zone = pbx_zone()
        import_range_check(
            first,
            last,
            today=local_today(timezone.now(), zone),
            keep_days=settings.CDR_RETENTION_DAYS,
        )
        try:
            known = set(known_queue_numbers())
        except RedisError as error:
            raise CommandError(
                f"Redis cannot be read ({error}); it holds the queue list and the PBX request "
                "budget that every process shares."
            ) from error
        if not known:
            self.stderr.write(
                "No queue list in the live cache yet (is the poller running?): calls are "
                "stored now and given their queues once the list is there."
            )
        days = days_of(first, last)
        progress = Progress(self.stderr, days=len(days))
        pace = backfill_pace()
        try:
            for day in days:
                self._day_import(day, known, again, progress, pace)
        except KeyboardInterrupt:
            progress.finish()
            self.stdout.write(
                f"Interrupted after {progress.done} of {len(days)} days "
                f"({progress.rows_read():,} rows, {progress.requests_sent()} requests); "
                "run the same command again to resume."
            )
            return
        except pbx.PBXError as error:
            progress.finish()
            raise CommandError(
                f"{error}. The {progress.done} days read so far are kept; "
                "run the same command again to resume."
            ) from error
        progress.finish()
        attributed = call_records_attribute(known=known)
        self.stdout.write(
            f"Read {progress.done} days ({progress.skipped_days} already settled): "
            f"{progress.rows:,} rows, {progress.requests} requests, "
            f"{_clock(time.monotonic() - progress.started)}"
            + (f"; {attributed} earlier calls given their queue" if attributed else "")
            + "."
        )

    def _day_import(
        self, day: date, known: set[int], again: bool, progress: Progress, pace: Callable[[], None]
    ) -> None:
        """Read one day to its end, waiting for the budget as long as it takes."""
        total = DayRead(day=day)  # what earlier attempts at the day read
        attempt = DayRead(day=day)  # what this attempt has read so far

        def page_read(read: DayRead) -> None:
            nonlocal attempt
            attempt = read
            progress.page(_added(total, read))

        while True:
            try:
                read = cdr_day_read(
                    day=day,
                    now=timezone.now(),
                    known=known,
                    max_wait=REQUEST_MAX_WAIT_SECONDS,
                    again=again,
                    on_page=page_read,
                    pace=pace,
                )
            except pbx.BudgetExhausted:
                total, attempt = _added(total, attempt), DayRead(day=day)
                progress.waiting()
                again = False  # the new pass is under way: go on with it
                continue
            progress.day_done(_added(total, read))
            return


def _added(total: DayRead, read: DayRead) -> DayRead:
    """``total`` (earlier attempts at the day) plus ``read`` (this one), for the progress line."""
    return DayRead(
        day=read.day,
        requests=total.requests + read.requests,
        rows=total.rows + read.rows,
        stored=total.stored + read.stored,
        skipped=total.skipped + read.skipped,
        restarts=total.restarts + read.restarts,
        complete=read.complete,
        settled=read.settled,
    )

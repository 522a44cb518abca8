"""Writes on the call history: read the PBX's call records (CDR) day by day into ``CallRecord``.

Every request goes through the shared budget's ``background`` lane (``pbx_client().cdr_raw``),
so history never takes a slot the live boards or an agent action need. A day is read from
where its cursor (``CdrDayCursor``) stopped: the next request starts at the last row already
read, which proves the offset still means what it meant (docs/kpi.md, "Reading the CDR").
Rows are upserted by the PBX's ``id``, so reading a row twice stores it once, and a page and its
cursor are saved in one transaction, so a crash never loses or skips a row.

``cdr_poll_run`` keeps today and yesterday current; ``cdr_day_read`` is also what
``manage.py cdr_import`` pages through a range with. ``cdr_poll_tick`` (the Celery task
``wallboard.history.cdr_poll``) runs the poll and then hands today's figures to the live boards
(``kpi_today_publish``): the boards' figures come from the same engine as every report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pbxapi import errors as pbx
from pbxapi.validation import CDR_PAGE_MAX
from wallboard.history.erlang import STAFFING_MAX_AGENTS, STAFFING_MIN_CALLS
from wallboard.history.intervals import day_start, local_today
from wallboard.history.kpi import QueueFigures
from wallboard.history.models import CallRecord, CdrDayCursor
from wallboard.history.records import page_rows, queue_attribute, record_read, row_identity
from wallboard.history.selectors import BoardToday, board_today_get, pbx_zone
from wallboard.live import store
from wallboard.live.pbx import pbx_client
from wallboard.live.poller import background_stretch
from wallboard.live.selectors import known_queue_numbers
from wallboard.live.services import kpi_publish
from wallboard.live.shapes import AgentToday, Staffing, TodayFigures
from wallboard.live.store import RedisLock

logger = logging.getLogger(__name__)

# A poll run sends at most this many requests: a normal run needs one or two, a day's full
# re-read once a page per 3000 rows. The rest waits for the next run.
POLL_MAX_REQUESTS = 5

# Every CallRecord column a row read again replaces.
_UPDATE_FIELDS = [f.name for f in CallRecord._meta.concrete_fields if not f.primary_key]


@dataclass
class DayRead:
    """What one ``cdr_day_read`` did for one day."""

    day: date
    requests: int = 0
    rows: int = 0  # positions read in the PBX's list, unreadable rows included
    stored: int = 0  # rows inserted or updated
    skipped: int = 0  # unreadable rows
    restarts: int = 0  # the day's rows shrank or shifted: read again from offset 0
    complete: bool = False  # reached the end of the day's list
    settled: bool = False  # the day is settled (now, or before this call)


@dataclass
class PollReport:
    """What one ``cdr_poll_run`` (and ``cdr_poll_tick``) did."""

    days: list[DayRead] = field(default_factory=list)
    deferred: bool = False  # the budget had no slot: the rest is read next run
    attributed: int = 0  # stored rows whose queue became known
    failed: str | None = None  # the PBX error that stopped the reading (cdr_poll_tick)
    published: int = 0  # board snapshots whose figures changed (cdr_poll_tick)


def settle_time(day: date, *, zone: ZoneInfo) -> datetime:
    """When ``day`` is complete enough to settle: ``CDR_SETTLE_SECONDS`` after its end.

    A call that starts before midnight is listed under its start day only once it ends, so the
    day's list keeps growing after midnight for as long as the longest call lasts.
    """
    end = day_start(day + timedelta(days=1), zone)
    return end + timedelta(seconds=settings.CDR_SETTLE_SECONDS)


# --- storing rows -----------------------------------------------------------------------------


def call_records_upsert(
    *, rows: list[Any], known: Collection[int], zone: ZoneInfo, stored_at: datetime
) -> tuple[int, list[str]]:
    """Store raw CDR rows (insert, or replace the row with the same PBX ``id``).

    Returns how many were stored and why the others could not be read. A row keeps the queue
    it was once attributed to, even when that queue is no longer in the PBX's list.
    """
    fields_by_id: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    for raw in rows:
        try:
            fields = record_read(raw, known=known, zone=zone)
        except ValueError as error:
            problems.append(str(error))
            continue
        fields_by_id[fields["id"]] = fields  # a page listing one id twice stores the last
    if not fields_by_id:
        return 0, problems
    unknown = [
        number
        for number, fields in fields_by_id.items()
        if fields["queue"] is None and fields["outcome"]
    ]
    if unknown:
        earlier = CallRecord.objects.filter(id__in=unknown, queue__isnull=False).order_by()
        for number, queue in earlier.values_list("id", "queue"):
            fields_by_id[number]["queue"] = queue
    CallRecord.objects.bulk_create(
        [CallRecord(**fields, stored=stored_at) for fields in fields_by_id.values()],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=_UPDATE_FIELDS,
    )
    return len(fields_by_id), problems


def call_records_attribute(*, known: Collection[int]) -> int:
    """Give stored queue calls whose queue was not known when they were read their queue, now
    that it is. Returns how many rows changed. Cheap when there is nothing to do: rows without
    a queue are looked up by number in two partial indexes."""
    if not known:
        return 0
    without_queue = CallRecord.objects.filter(queue__isnull=True).order_by()
    # Two lookups rather than one OR: SQLite then searches each partial index by number.
    rows = {
        number: row
        for lookup in (
            {"received__in": [str(queue) for queue in known]},
            {"recording_queue__in": list(known)},
        )
        for number, *row in without_queue.filter(**lookup).values_list(
            "id", "outcome", "received", "recording_queue"
        )
    }
    ids_by_queue: dict[int, list[int]] = {}
    for number, (outcome, received, recording) in rows.items():
        queue = queue_attribute(received=received, recording=recording, known=known)
        if outcome and queue is not None:  # outgoing and other non-queue rows stay without
            ids_by_queue.setdefault(queue, []).append(number)
    changed = 0
    for queue, ids in ids_by_queue.items():
        changed += CallRecord.objects.filter(id__in=ids).update(queue=queue)
    if changed:
        logger.info("Attributed %d stored call(s) to queues that are known now", changed)
    return changed


def call_records_purge(*, today: date) -> int:
    """Delete call records (and cursors) of days more than ``CDR_RETENTION_DAYS`` before
    ``today``; nothing when it is 0. Returns how many records went."""
    keep = settings.CDR_RETENTION_DAYS
    if keep <= 0:
        return 0
    horizon = today - timedelta(days=keep)
    deleted, _ = CallRecord.objects.filter(day__lt=horizon).delete()
    CdrDayCursor.objects.filter(day__lt=horizon).delete()
    if deleted:
        logger.info("Deleted %d call record(s) from before %s (retention)", deleted, horizon)
    return deleted


# --- reading the PBX --------------------------------------------------------------------------


def backfill_pace(*, sleep: Callable[[float], None] = time.sleep) -> Callable[[], None]:
    """A ``pace`` for ``cdr_day_read`` that keeps a backfill to one budget slot at a time: each
    request after the first waits a window (longer while agent actions crowd the budget, as the
    poller's slow sources do) after the previous one ended, when that request's slot has left
    the window.

    The background lane alone would not do: a reader that waits for slots takes each one the
    moment it frees, before the poll grid's next request asks for it, so it would take the
    polls' slots. One slot at a time is the reserve the polls leave anyway (docs/kpi.md,
    "Backfill").
    """
    first = True

    def pace() -> None:
        nonlocal first
        if not first:
            sleep(settings.PBX_BUDGET_WINDOW * background_stretch())
        first = False

    return pace


def cdr_day_read(
    *,
    day: date,
    now: datetime,
    known: Collection[int],
    max_requests: int | None = None,
    max_wait: float = 0.0,
    again: bool = False,
    on_page: Callable[[DayRead], None] | None = None,
    pace: Callable[[], None] | None = None,
) -> DayRead:
    """Read ``day``'s CDR from where its cursor stopped, page by page, until the end of the
    day's list (or ``max_requests``). ``again`` re-reads a settled day from offset 0; ``pace``
    is called before each request (a backfill waits there for its turn).

    Each page and the cursor are saved together. A page whose first row is not the last row
    read means the list shrank or shifted: the day is read again from offset 0, once; twice in
    one call is a ``ProtocolError``. Budget refusals (``BudgetExhausted`` after ``max_wait``)
    and PBX errors propagate; what was read before them is kept.
    """
    zone = pbx_zone()
    settle_at = settle_time(day, zone=zone).timestamp()
    report = DayRead(day=day)
    cursor = CdrDayCursor.objects.filter(day=day).first()
    if cursor is None:
        cursor = CdrDayCursor(day=day, pass_started=now)
    elif cursor.settled_at is not None and not again:
        report.complete = report.settled = True
        return report
    elif again or (now.timestamp() >= settle_at > cursor.pass_started.timestamp()):
        # Read it all once more (changed rows included); saved at once, so a retry after a
        # budget refusal goes on with this pass instead of finding the day settled.
        _pass_start(cursor, now)
        cursor.save()
    client = pbx_client()
    while max_requests is None or report.requests < max_requests:
        counted = cursor.rows
        offset = counted - 1 if counted else 0
        if pace is not None:
            pace()
        payload = client.cdr_raw(
            date_from=day, date_to=day, limit=CDR_PAGE_MAX, offset=offset,
            priority="background", max_wait=max_wait,
        )  # fmt: skip
        report.requests += 1
        cursor.requests += 1
        page = page_rows(payload)
        full = len(page) >= CDR_PAGE_MAX
        if counted:
            if not page or row_identity(page[0]) != cursor.last:
                report.restarts += 1
                if report.restarts > 1:
                    raise pbx.ProtocolError(f"The PBX's call records of {day} keep moving")
                logger.warning(
                    "The call records of %s changed under the reader (%d read, %d now at "
                    "offset %d); reading the day again",
                    day, counted, len(page), offset,
                )  # fmt: skip
                _pass_start(cursor, now)
                cursor.save()
                continue
            page = page[1:]
        with transaction.atomic():
            stored, problems = call_records_upsert(
                rows=page, known=known, zone=zone, stored_at=timezone.now()
            )
            cursor.rows = counted + len(page)
            if page:
                cursor.last = row_identity(page[-1])
            cursor.read_at = now
            # Settled: this pass read the whole list, and began after the day's settle time.
            if not full and cursor.pass_started.timestamp() >= settle_at:
                cursor.settled_at = now
            cursor.save()
        if problems:
            logger.warning(
                "Skipped %d unreadable CDR row(s) of %s; first: %s", len(problems), day, problems[0]
            )
        report.rows += len(page)
        report.stored += stored
        report.skipped += len(problems)
        report.settled = cursor.settled_at is not None
        if on_page is not None:
            on_page(report)
        if not full:
            report.complete = True
            break
    return report


def _pass_start(cursor: CdrDayCursor, now: datetime) -> None:
    """Start reading the day from offset 0 again (upserts make re-reading harmless)."""
    cursor.rows = 0
    cursor.last = None
    cursor.pass_started = now
    cursor.settled_at = None


def cdr_poll_run(*, now: datetime | None = None) -> PollReport:
    """One run of the CDR poll: yesterday until it is settled, then today; at most
    ``POLL_MAX_REQUESTS`` requests, never waiting for the budget (a refusal leaves the rest to
    the next run). Also gives stored rows the queues that became known. PBX errors other than
    a refusal propagate (the live poller keeps the PBX state).
    """
    now = now or timezone.now()
    zone = pbx_zone()
    today = local_today(now, zone)
    known = set(known_queue_numbers())
    report = PollReport(attributed=call_records_attribute(known=known))
    left = POLL_MAX_REQUESTS
    for day in (today - timedelta(days=1), today):
        if left <= 0:
            break
        try:
            read = cdr_day_read(day=day, now=now, known=known, max_requests=left)
        except pbx.BudgetExhausted:
            report.deferred = True
            break
        if read.requests:  # a settled day is not read
            report.days.append(read)
        left -= read.requests
    return report


# The CDR poll task's time limits; its lock outlives the hard one, so a run that is still going
# never loses it, and a killed worker's lock frees itself soon after.
CDR_POLL_SOFT_TIME_LIMIT = 50.0
CDR_POLL_HARD_TIME_LIMIT = 60.0
CDR_POLL_LOCK = "cdr-poll-lock"
CDR_READ_MARK = "cdr-read"


def cdr_poll_tick(*, now: datetime | None = None) -> PollReport | None:
    """One beat of the call history (the task ``wallboard.history.cdr_poll``): read the new
    call records (``cdr_poll_run``), then publish today's figures to the boards — also when no
    row came (the first run after midnight starts the new day) and when the PBX failed (the
    stored records still say what they said). Under a Redis lock, so two runs never overlap;
    returns None, doing nothing, while another run holds it.
    """
    lock = RedisLock(CDR_POLL_LOCK, CDR_POLL_HARD_TIME_LIMIT + 1.0)
    if not lock.acquire():
        return None
    try:
        try:
            report = _cdr_read_unless_busy(now=now)
        except pbx.PBXError as error:
            # Blocked, unreachable, a broken answer: the live poller shows the PBX state; the
            # cursors keep what was read, and the next run carries on from there.
            logger.warning("CDR poll stopped: %s", error)
            report = PollReport(failed=str(error))
        report.published = kpi_today_publish(now=now)
        return report
    finally:
        lock.release()


def _cdr_read_unless_busy(*, now: datetime | None) -> PollReport:
    """``cdr_poll_run``, as often as the boards can spare it: while agent actions use more than
    the budget's reserve, the CDR read comes BACKGROUND_STRETCH times less often, like the
    poller's own slow sources (a background request in a full window makes an action take a
    poll's slot, and that round is a request longer on every board)."""
    stretch = background_stretch()
    last = store.mark_get(CDR_READ_MARK)
    period = settings.CDR_POLL_SECONDS * stretch * 0.95  # a beat early is still on time
    # A mark in the future was noted before the clock was stepped back: not a recent read.
    if stretch > 1 and last is not None and 0 <= time.time() - last < period:
        return PollReport(deferred=True)
    report = cdr_poll_run(now=now)
    store.mark_note(CDR_READ_MARK, at=time.time())
    return report


# --- today's figures for the live boards ------------------------------------------------------


def kpi_today_publish(*, now: datetime | None = None) -> int:
    """Compute today's figures of every queue in the PBX's list (the live cache's) with the
    KPI engine, and hand them to the boards (``wallboard.live.services.kpi_publish``): each
    queue's figures and staffing hint, each agent's answered calls and talk time. Returns how
    many board snapshots changed."""
    board = board_today_get(queues=known_queue_numbers(), now=now)
    return kpi_publish(
        queues={queue: _today_figures(figures) for queue, figures in board.figures.items()},
        staffing={queue: _staffing(board, queue) for queue in board.figures},
        agents={queue: _agents_today(by_agent) for queue, by_agent in board.agents.items()},
        computed_at=board.computed_at.timestamp(),
        valid_until=board.day_end.timestamp(),
    )


def kpi_rules_changed() -> None:
    """A queue's KPI rules changed (the admin): once that is committed, publish today's
    figures again, so the boards count by the new rules at once instead of at the next CDR
    poll."""
    # Robust: whatever goes wrong publishing, the change is saved, and the next CDR poll
    # publishes by the new rules.
    transaction.on_commit(_publish_after_rules_change, robust=True)


def _publish_after_rules_change() -> None:
    try:
        kpi_today_publish()
    except redis.RedisError as error:
        logger.warning("Today's figures were not published after a KPI rules change: %s", error)


def _today_figures(figures: QueueFigures) -> TodayFigures:
    return {
        "offered_today": figures.offered,
        "answered_today": figures.answered,
        "missed_today": figures.unanswered,
        "abandoned_today": figures.abandoned,
        "service_level": figures.service_level,
        "service_level_met": figures.service_level_met,
        "sl_target_seconds": figures.target_seconds,
        "sl_goal_percent": figures.target_percent,
        "sl_formula": figures.formula,
        "asa": figures.asa,
        "aht": figures.aht,
        "abandon_rate": figures.abandon_rate,
    }


def _staffing(board: BoardToday, queue: int) -> Staffing:
    """The hint with what it was made from; ``needed`` is None without a hint."""
    rules = board.rules[queue]
    hint = board.staffing[queue]
    calls = board.arrivals[queue]
    aht = board.figures[queue].aht
    arrivals_per_hour = calls * 3600.0 / board.window_seconds
    return {
        "needed": hint.agents if hint is not None else None,
        "capped": hint.capped if hint is not None else False,
        "max_agents": STAFFING_MAX_AGENTS,
        "window_seconds": int(board.window_seconds),
        "calls": calls,
        "min_calls": STAFFING_MIN_CALLS,
        "arrivals_per_hour": round(arrivals_per_hour, 1),
        "aht": aht,
        "traffic": round(arrivals_per_hour / 3600.0 * aht, 2) if aht else None,
        "target_seconds": rules.target_seconds,
        "target_percent": rules.target_percent,
        "service_level": hint.service_level if hint is not None else None,
        "asa": hint.asa if hint is not None else None,
    }


def _agents_today(by_agent: dict[str, tuple[int, int]]) -> dict[int, AgentToday]:
    """Agents by extension: the boards' member rows are extensions (an agent that is not a
    number, such as a name the PBX wrote, has no row to show it in)."""
    return {
        int(agent): {"answered": calls, "talk_seconds": talk}
        for agent, (calls, talk) in by_agent.items()
        if agent.isascii() and agent.isdigit()
    }

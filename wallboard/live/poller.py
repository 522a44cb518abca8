"""What to fetch next, and one poll tick that spends the polling share of the budget on it.

With Q watched queues a full refresh costs Q+1 requests (a queue/status per queue plus one
call/statistics, which every queue's member states depend on), so the best possible per-queue
refresh period is (Q+1)/B at a budget of B requests per second. To get close, ticks follow
each other without a gap and fetch the most out-of-date source on every slot of an even grid
that spends the polls' share (``_pace``: the share leaves actions the room they have recently
used); the shared budget still decides every request, and never lets us exceed the PBX's limit.

Staleness order: a source is *due* at (last attempt + its period); the earliest due goes first.
Watched queues and call/statistics have period 0, so they go round-robin; extensions come every
POLL_EXTENSIONS_SECONDS, the queue list every POLL_QUEUE_LIST_SECONDS (new queues appear by
themselves), queues no open board watches every POLL_UNWATCHED_SECONDS. Never-fetched sources
are due at once, the queue list first (it says which queues exist). Today's figures are not
polled here: the call history publishes them (``services.kpi_publish``).

Two budget lanes (pbxapi.budget). The round-robin sources (queue statuses, call/statistics)
ask on the "poll" lane, paced on an even grid (``_pace``). The slow sources (queue list,
extensions: ``BACKGROUND_SOURCES``) ask on the "background" lane, off the grid and
without waiting: they borrow an idle reserve slot, so they do not make a round one request
longer; when refused they stay due and are tried again before the next grid request.

An attempt is noted before the request (a failing source must not be retried in a hot loop)
and taken back if the budget refused it, so a refused source keeps its place instead of going
to the back of the round-robin. An agent action's refresh (services.queue_refresh) notes its
queue too, and every iteration re-reads the attempts, so the poller does not fetch that queue
again right after.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field

from django.conf import settings

from pbxapi import errors as pbx
from wallboard.live import services, store
from wallboard.live.pbx import pbx_budget
from wallboard.live.store import (
    SOURCE_CALLS,
    SOURCE_EXTENSIONS,
    SOURCE_QUEUES,
    source_queue_status,
)

logger = logging.getLogger(__name__)

# Failures that mean "the PBX is not answering properly": back off instead of hammering it.
_OUTAGE_ERRORS = (
    pbx.PBXTimeout,
    pbx.ServerError,
    pbx.Unreachable,
    pbx.ProtocolError,
    pbx.AuthenticationFailed,
)
# Tie-break for sources due at the same moment: the list of queues first, then names, then calls,
# then queue statuses.
_KIND_ORDER = {SOURCE_QUEUES: 0, SOURCE_EXTENSIONS: 1, SOURCE_CALLS: 2}
# Slow sources fetched on the budget's "background" lane, off the poll grid (see _tick).
BACKGROUND_SOURCES = frozenset({SOURCE_QUEUES, SOURCE_EXTENSIONS})
# While actions use more than the reserve (the polls leave them extra room), the slow sources
# (the poller's and the call history's CDR reads) come this many times less often. The window
# is then full: a background request in it makes the next action wait for a poll's slot, and
# that round is a whole request longer on every board. Names, registrations and the history
# can wait a few minutes more while supervisors are that busy; who is on a call cannot.
BACKGROUND_STRETCH = 3.0


@dataclass
class TickReport:
    """What one tick did (returned by the task, logged, and asserted on by tests)."""

    skipped: str | None = None  # "busy" (another tick runs), "blocked", "backoff"
    fetched: list[str] = field(default_factory=list)
    failed: str | None = None
    changed: int = 0


def background_stretch() -> float:
    """How many times less often slow background fetches should come right now: the poller's
    queue list and extensions, and the call history's CDR reads (``BACKGROUND_STRETCH`` while
    agent actions use more than the reserve, else 1)."""
    grid = store.poll_grid_get()
    busy = polls_leave((grid or {}).get("demand") or 0.0) > settings.PBX_ACTION_RESERVE
    return BACKGROUND_STRETCH if busy else 1.0


def due_sources(
    *,
    now: float,
    attempts: dict[str, float],
    known: list[int],
    watched: set[int],
    slow: float = 1.0,
) -> list[str]:
    """Every source due now, most overdue first. ``slow`` stretches the periods of the slow
    sources (queue list, extensions; see ``BACKGROUND_STRETCH``)."""
    periods: dict[str, float] = {
        SOURCE_QUEUES: settings.POLL_QUEUE_LIST_SECONDS * slow,
        SOURCE_EXTENSIONS: settings.POLL_EXTENSIONS_SECONDS * slow,
    }
    unwatched = settings.POLL_UNWATCHED_SECONDS
    if known:
        # call/statistics feeds every watched queue, so it goes round with them.
        periods[SOURCE_CALLS] = 0.0 if watched else unwatched
    for queue in known:
        periods[source_queue_status(queue)] = 0.0 if queue in watched else unwatched

    due: list[tuple[float, int, str]] = []
    for source, period in periods.items():
        last = attempts.get(source)
        if last is not None and last > now:
            # Noted before the clock was stepped back: fetch it again, as if never fetched.
            last = None
        due_at = 0.0 if last is None else last + period
        if due_at <= now:
            due.append((due_at, _KIND_ORDER.get(source, 3), source))
    return [source for _due_at, _kind, source in sorted(due)]


def backoff_delay(failures: int) -> float:
    """Exponential backoff with jitter: half to all of base * 2^(failures-1), capped."""
    ceiling = min(
        settings.POLL_BACKOFF_MAX_SECONDS,
        settings.POLL_BACKOFF_BASE_SECONDS * 2 ** max(0, failures - 1),
    )
    return random.uniform(ceiling / 2, ceiling)


# A tick runs a little past the next beat, and a tick that finds the lock held waits a little
# for it: the next tick takes over right where this one stops, so no grid slot falls into a gap
# between two ticks (a poll in such a gap would go out late and make its round longer).
TICK_RUN_SHARE = 1.15
LOCK_WAIT_SHARE = 0.5


def tick_seconds() -> float:
    """How long a tick goes on starting requests."""
    return settings.POLL_TICK_SECONDS * TICK_RUN_SHARE


def lock_ttl_seconds() -> float:
    """Longer than a tick can possibly run (the task's hard time limit), so a live tick never
    loses its lock, yet a killed worker's lock frees itself soon after."""
    return poll_hard_time_limit() + 1.0


def poll_soft_time_limit() -> float:
    # A tick may wait for the lock, then starts requests for tick_seconds(); the one in flight may
    # take the full PBX timeouts. Killing it earlier would turn a slow-but-working PBX into an
    # outage.
    lock_wait = settings.POLL_TICK_SECONDS * LOCK_WAIT_SHARE
    return lock_wait + tick_seconds() + settings.PBX_CONNECT_TIMEOUT + settings.PBX_READ_TIMEOUT


def poll_hard_time_limit() -> float:
    return poll_soft_time_limit() + 2.0


def poll_tick(*, seconds: float | None = None) -> TickReport:
    """One tick: while ``seconds`` (default: ``tick_seconds()``) last, fetch the most
    out-of-date source. Waits a little for a tick still running, then takes over from it."""
    lock = store.PollLock(lock_ttl_seconds())
    if not lock.acquire(wait=settings.POLL_TICK_SECONDS * LOCK_WAIT_SHARE):
        return TickReport(skipped="busy")
    try:
        return _tick(seconds if seconds is not None else tick_seconds())
    finally:
        lock.release()


def _tick(seconds: float) -> TickReport:
    report = TickReport()
    deadline = time.monotonic() + seconds
    blocked_until = pbx_budget().blocked_until()
    if blocked_until is not None:
        # Make sure every board says so, even if the 403 was met by another process.
        services.pbx_outcome_record(source="poll", error=pbx.Blocked(until=blocked_until))
        report.skipped = "blocked"
        return report
    backoff = store.backoff_get()
    # A backoff that ends further ahead than the longest one was noted before the clock was
    # stepped back: it is over.
    now = time.time()
    if now < backoff["until"] <= now + settings.POLL_BACKOFF_MAX_SECONDS:
        report.skipped = "backoff"
        return report

    known = [q["queue"] for q in store.known_queues()]
    watched = store.watched_queues(known)
    slow = background_stretch()
    # Background sources the budget refused since the last grid request: tried again after it.
    refused: set[str] = set()
    while (remaining := deadline - time.monotonic()) > 0:
        # Read again every time (one HGETALL): an action's refresh in another process notes the
        # queue it fetched, and the round-robin must not fetch that queue again right after.
        attempts = store.attempts_get()
        due = due_sources(
            now=time.time(), attempts=attempts, known=known, watched=watched, slow=slow
        )
        due = [source for source in due if source not in refused]
        if not due:
            break
        source = due[0]
        if source in BACKGROUND_SOURCES:
            # Off the grid, only if a slot is free right now: a refused one stays due, and the
            # round-robin goes on without it.
            lane, max_wait = "background", 0.0
        else:
            pause = _pace(remaining)
            if pause is None:
                break  # the next paced slot falls after this tick: the next tick takes it
            time.sleep(pause)
            # Without waiting in the budget: a refusal moves the grid (_grid_hold).
            lane, max_wait = "poll", 0.0
            refused.clear()
        now = time.time()
        previous = attempts.get(source)
        store.attempt_note(source, at=now)
        try:
            report.changed += services.source_fetch(source, priority=lane, max_wait=max_wait)
        except pbx.BudgetExhausted as refusal:
            # Nothing was sent: the source keeps its place in the order. Were it marked as
            # attempted, it would go to the back of the round-robin and wait a whole extra round.
            store.attempt_undo(source, at=now, previous=previous)
            if lane == "background":
                refused.add(source)
                continue
            _grid_hold(refusal.retry_after)
            continue
        except (pbx.Blocked, pbx.BudgetUnavailable) as error:
            report.failed = f"{source}: {error}"
            break
        except pbx.NotFound:
            # A queue that vanished: the queue list is out of date, fetch it next.
            store.attempt_forget(SOURCE_QUEUES)
            continue
        except _OUTAGE_ERRORS as error:
            report.failed = f"{source}: {error}"
            _backoff_register(backoff)
            break
        report.fetched.append(source)
        if backoff["failures"]:
            store.backoff_clear()
            backoff = {"failures": 0, "until": 0.0}
        if source == SOURCE_QUEUES:
            known = [q["queue"] for q in store.known_queues()]
            watched = store.watched_queues(known)
    return report


# How quickly the estimate of the actions' demand follows what they really use (seconds): up
# quickly, so a stream of actions gets its room within a few seconds (until then each action
# beyond the reserve makes a round longer), yet one action alone stays below a whole slot for
# the five seconds it is in the window; down slowly, so a pause in the stream does not give
# the room back to the polls only to take it again.
DEMAND_RISE_SECONDS = 3.0
DEMAND_FALL_SECONDS = 15.0


def polls_leave(demand: float) -> int:
    """Slots per window the polls leave to the other lanes: what actions have recently used,
    rounded up, and never fewer than the reserve.

    Agent actions that fit into the slots the polls leave never wait and never delay a poll;
    every one that does not fit takes a poll's slot, so the round it falls into is a whole
    request longer than the rest. Leaving room for the demand instead stretches every round a
    little and evenly: at 20 actions a minute (1.7 per window) the polls leave 2 slots instead
    of the reserve's 1. Background fetches use whatever of that room actions leave idle.
    """
    reserve = settings.PBX_ACTION_RESERVE
    wanted = math.ceil(round(demand, 3))
    return min(max(reserve, wanted), settings.PBX_BUDGET_REQUESTS - 1)


def poll_spacing_seconds(demand: float = 0.0) -> float:
    """The even spacing of poll requests that spends the polls' share, given the actions' recent
    demand (requests per window).

    The share is spread over the window plus the budget's typical hold (``budget.guard``), not
    the plain window: a slot stays held until a window after its answer, so each poll occupies
    W + its hold, and polls spread over the plain window would now and then hold one slot more
    than they leave, so an action or background request would wait for a poll's slot and the
    poll after it would lag. At exactly the share a late request would also be late again one
    window later, for ever; with the slack such a lag is caught up within a window. It costs
    hold / W of the polls' rate.
    """
    share = settings.PBX_BUDGET_REQUESTS - polls_leave(demand)
    return (settings.PBX_BUDGET_WINDOW + pbx_budget().guard) / share


def demand_update(grid: dict | None, *, actions: int, now: float) -> float:
    """The actions' demand (requests per window), smoothed: an exponential moving average of how
    many action requests the last window held.

    Background fetches are left out: they ask without waiting and are simply tried again when
    no slot is free, so they need no room of their own (counted, a rare burst of them would push
    the estimate over the next whole slot and slow every board for seconds).
    """
    if grid is None or grid.get("demand") is None:
        return float(actions)
    tau = DEMAND_RISE_SECONDS if actions > grid["demand"] else DEMAND_FALL_SECONDS
    weight = 1.0 - math.exp(-max(0.0, now - grid["at"]) / tau)
    return grid["demand"] + (actions - grid["demand"]) * weight


def _pace(remaining: float) -> float | None:
    """Seconds to wait for this request's slot on an even grid, or None if it is past the tick.

    Without pacing the budget grants a window's whole share in one burst and then nothing until
    the oldest grant leaves the window, so a round of Q+1 requests that straddles such a gap
    takes far longer than the average, and the slowest refresh periods with it. Slots sit on a grid
    (``{p}:poll-grid`` holds the last one), so a request delayed by a slow answer or the gap
    between two ticks does not push every later one back; after a pause it restarts from now.
    The spacing leaves room for what actions have recently used (``polls_leave``).
    """
    now = time.time()
    usage = pbx_budget().usage()
    grid = store.poll_grid_get()
    demand = demand_update(grid, actions=usage.actions, now=now)
    spacing = poll_spacing_seconds(demand)
    slot = now if grid is None else grid["slot"] + spacing
    if not now - settings.PBX_BUDGET_WINDOW <= slot <= now + settings.PBX_BUDGET_WINDOW:
        # After a pause (idle, blocked, outage) the grid starts again from now; a slot far ahead
        # was set before the clock was stepped back.
        slot = now
    # A lag of up to a slot (a slow answer, the gap between ticks) is caught up. A longer one
    # is not kept as a debt: paying it back would take every slot the budget frees for as
    # long, in a burst, and fill the window for the actions.
    slot = max(slot, now - spacing)
    wait = max(0.0, slot - now)
    if wait > remaining:
        return None
    store.poll_grid_set({"slot": slot, "demand": demand, "at": now})
    return wait


# A slot frees the instant the oldest grant leaves the window: ask a hair later.
_HOLD_SLACK_SECONDS = 0.003


def _grid_hold(seconds: float) -> None:
    """The budget refused a poll on its slot (actions took the window): move the grid so its
    next slot is when the budget frees one, and go on from there.

    Not a lag to catch up: the polls after it would come in a burst, a window later the budget
    would hold one of them back again, and so on for ever, each time making a round longer.
    """
    grid = store.poll_grid_get()
    if grid is None:
        return
    spacing = poll_spacing_seconds(grid.get("demand") or 0.0)
    hold = max(seconds, 0.0) + _HOLD_SLACK_SECONDS
    store.poll_grid_set({**grid, "slot": time.time() + hold - spacing})


def _backoff_register(backoff: dict) -> None:
    failures = int(backoff["failures"]) + 1
    delay = backoff_delay(failures)
    store.backoff_set({"failures": failures, "until": time.time() + delay})
    logger.warning("PBX poll failed %d time(s) in a row; next try in %.1f s", failures, delay)

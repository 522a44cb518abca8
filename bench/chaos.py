"""Faults, as a script anyone can run: the production topology on loopback, one fault at a time.

Brings up nginx in front of two Daphne processes, two Celery workers, one beat, a Redis and a
PostgreSQL of its own and the PBX simulator (bench/chaos_topology.py); drives a small call
centre (the simulator's autopilot), kiosk TVs on websockets through nginx and a supervisor who
pauses and unpauses agents through the API at a steady rate (bench/chaos_load.py); then injects
each fault in turn, ends it, and measures what the PBX, the TVs and the audit trail saw. Prints a
table (fault, expected, measured, pass/fail) and exits 1 if any expectation failed.

    python bench/chaos.py                          # every fault, 30 s each
    python bench/chaos.py --fault daphne-kill --fault pbx-403 --duration 30
    python bench/chaos.py --list                   # the faults and what each expects

What is measured, and the expectations, are explained in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import psycopg

from bench.chaos_load import (
    ACTION_PATHS,
    ActionRecord,
    PbxWatch,
    Supervisor,
    TvFleet,
    TvRecord,
)
from bench.chaos_topology import SUPERVISOR, Topology, tools_missing
from bench.harness import ROOT, django_shell, machine_facts
from pbxapi.simulator import SimulatorConfig, start_simulator

BUDGET = 18  # PBX_BUDGET_REQUESTS: the most requests the product may send in any window
WINDOW = 5.0  # PBX_BUDGET_WINDOW, and the PBX's own window
PBX_LIMIT = 20
NOTICE = 10.0  # BOARD_NOTICE_SECONDS: older data makes a board say "data from ..."
SETTLE = 15.0  # recovered = fresh again, and still so this long after (no relapse)
HEARTBEAT = 5.0  # WS_HEARTBEAT_SECONDS
BACKOFF_MAX = 60.0  # POLL_BACKOFF_MAX_SECONDS
# An action waits at most 3 s for a slot, then the PBX's connect and read timeouts (3 + 10 s).
ACTION_LONGEST = 3.0 + 3.0 + 10.0
SLOW_PBX_SECONDS = 12.0  # "pbx-slow": every answer this late, past the 10 s read timeout
TRICKLE_SECONDS = 0.5  # "pbx-trickle": between two bytes, far below the read timeout
# The poll lock's TTL with the product's defaults (poller.lock_ttl_seconds), for --list; a run
# asks the product itself.
LOCK_TTL_DEFAULT = 17.65
SIM_USER = "chaos"
NGINX_LOGS = ("access.log", "error.log")
TZ = ZoneInfo("Europe/Bratislava")


# --- the run's moving parts -------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    topology: Topology
    sim: object
    tvs: TvFleet
    supervisor: Supervisor
    pbx: PbxWatch
    lock_ttl: float
    notes: list[str] = field(default_factory=list)

    def log(self, text: str) -> None:
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        print(f"[{stamp}] {text}", flush=True)


@dataclass
class Fault:
    """One fault: how to start and end it, and what the product must do meanwhile and after.

    `instant`: the fault is one event (a kill, a flush, a clock step); the product must recover
    from it by itself, so recovery is timed from the event. `heal` then only puts the topology
    back (a killed process started again) once the phase's duration is over. Otherwise the fault
    lasts the duration and recovery is timed from `heal`.
    """

    name: str
    expected: str
    inject: Callable[[Run], str | None]
    heal: Callable[[Run], str | None] | None = None
    instant: bool = False
    recover_within: float | None = None  # every TV fresh again this soon after the fault
    stale_within: float | None = None  # no TV without fresh data longer than this, all phase
    reconnect_within: float | None = None  # TVs whose socket dropped are back this soon
    actions_within: float | None = None  # every action answered this soon
    recover_from: Callable[[Run, PhaseResult], float] | None = None


@dataclass
class Check:
    what: str
    ok: bool


@dataclass
class PhaseResult:
    fault: Fault
    start: float
    inject_at: float = 0.0
    heal_at: float = 0.0
    end: float = 0.0
    origin: float = 0.0  # recovery is timed from here
    baseline_fresh: bool = True
    note: str = ""
    requests: int = 0
    max_5s: int = 0
    refusals: int = 0  # the PBX's rate limiter said 403: caused by the product
    recover: float | None = None
    stale: float = 0.0
    shown_stale: float = 0.0  # the same, by the page's own age banner (heartbeat fresh_at too)
    reconnect: float | None = None
    dropped_tvs: int = 0
    pbx_states: Counter = field(default_factory=Counter)
    actions: list[ActionRecord] = field(default_factory=list)
    audit_missing: int = 0
    extra: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)


# --- pure measures (tested in tests/bench/test_chaos.py) --------------------------------------


def max_in_window(times: Sequence[float], window: float, *, since: float | None = None) -> int:
    """The most events in any half-open window (t - window, t] over the given times; with
    `since`, only windows ending at or after it (a phase's windows, with their lead-in)."""
    ordered = sorted(times)
    best, low = 0, 0
    for high, at in enumerate(ordered):
        while ordered[low] <= at - window:
            low += 1
        if since is None or at >= since:
            best = max(best, high - low + 1)
    return best


def stable_recovery(fresh: Sequence[tuple[float, float]], *, origin: float, now: float,
                    notice: float, settle: float) -> float | None:  # fmt: skip
    """When a TV got fresh data again for good after a fault, or None (not yet, or not stable).

    `fresh` holds (received, polled): when the TV got a new result and when the PBX had
    answered that queue's status (both monotonic). "For good": from that receipt
    until `now` no gap reaches `notice` (the board never said "data from ..." again), and that
    has lasted at least `settle` seconds. A fault whose effects come back (a block that follows
    a burst) so moves the recovery to when they are over.
    """
    after = [received for received, polled in fresh if received >= origin and polled > origin]
    if not after or now - after[-1] >= notice:
        return None
    start = after[0]
    for previous, current in itertools.pairwise(after):
        if current - previous >= notice:
            start = current
    return start if now - start >= settle else None


def longest_gap(received: Sequence[float], start: float, end: float) -> float:
    """The longest time within [start, end] without fresh data (before the first, after the
    last, and between two receipts); from the last receipt before `start` if there is one."""
    before = [t for t in received if t < start]
    inside = [t for t in received if start <= t <= end]
    edges = [before[-1] if before else start, *inside, end]
    return max((b - a for a, b in itertools.pairwise(edges)), default=end - start)


def in_flight(action: ActionRecord, start: float, end: float) -> bool:
    """Whether the action was waiting for its answer at some moment of [start, end]."""
    answered = action.answered if action.answered is not None else float("inf")
    return action.sent <= end and answered >= start


def audit_missing(actions: Sequence[ActionRecord], rows: Sequence[dict], *, slack: float) -> int:
    """Answered actions that have no audit row (MemberAction) of their own.

    Every action the product answered with an outcome must have its row, with the same queue,
    extension, action, verdict and reason, created between the request and its answer (± slack
    for clocks). "unavailable" answers are left out: the product's own Redis or database was
    down, so the row may be missing by design (and then nothing was sent to the PBX). Each row
    is used once, oldest first.
    """
    used: set[int] = set()
    missing = 0
    for action in sorted(actions, key=lambda a: a.sent_wall):
        if action.reason is None or action.reason == "unavailable":
            continue
        assert action.answered_wall is not None
        for index, row in enumerate(rows):
            if index in used:
                continue
            if (
                (row["queue"], row["extension"], row["action"])
                == (action.queue, action.extension, action.action)
                and row["ok"] is action.ok
                and row["reason"] == action.reason
                and action.sent_wall - slack <= row["created"] <= action.answered_wall + slack
            ):
                used.add(index)
                break
        else:
            missing += 1
    return missing


# Reasons of rows whose request may have reached the PBX (blocked: the PBX may have said 403).
SENT_REASONS = frozenset({"accepted", "refused", "timeout", "pbx_error", "unreachable", "blocked"})


def unaudited_pbx_actions(pbx_actions: int, rows: Sequence[dict]) -> int:
    """Pause/unpause requests the PBX received beyond the audit rows that may have sent one."""
    could_have_sent = sum(1 for r in rows if r["ok"] is None or r["reason"] in SENT_REASONS)
    return max(0, pbx_actions - could_have_sent)


# --- faults ---------------------------------------------------------------------------------


def _set_pbx_fault(mode: str | None) -> Callable[[Run], str | None]:
    def apply(run: Run) -> str | None:
        run.sim.centre.set_fault(mode)  # type: ignore[attr-defined]
        return f"simulator fault {mode!r}" if mode else "simulator fault cleared"

    return apply


def _redis_restart(run: Run) -> str:
    redis_service = run.topology.services["redis"]
    redis_service.stop()
    redis_service.restart_ready(timeout=30)
    return "Redis stopped (SIGTERM) and started again, empty (no persistence, as in compose)"


def _redis_flush(run: Run) -> str:
    client = run.topology.redis_client()
    try:
        client.flushall()
    finally:
        client.close()
    return "FLUSHALL on the topology's own Redis"


def _daphne_kill(run: Run) -> str:
    counts = {}
    for name in ("daphne-1", "daphne-2"):
        service = run.topology.services[name]
        counts[name] = _established_to(service.port)
    victim = max(counts, key=lambda n: counts[n])
    run.topology.services[victim].kill9()
    run.notes.append(f"daphne-kill: killed {victim}")
    return f"kill -9 {victim} (it held {counts[victim]} of {sum(counts.values())} connections)"


def _daphne_heal(run: Run) -> str:
    for name in ("daphne-1", "daphne-2"):
        service = run.topology.services[name]
        if not service.running():
            service.restart_ready()
            return f"{name} started again"
    return "both Daphnes running"


def _established_to(port: int | None) -> int:
    return sum(
        1
        for c in psutil.net_connections(kind="tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def _worker_kill(run: Run) -> str:
    workers = {n: run.topology.services[n] for n in ("worker-1", "worker-2")}
    before = len(run.pbx.killed)
    run.pbx.kill_on_next_poll(workers)
    deadline = time.monotonic() + 30
    while len(run.pbx.killed) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    run.pbx.disarm()
    if len(run.pbx.killed) == before:
        return "no worker sent a poll within 30 s: none killed"
    _at, name, path = run.pbx.killed[-1]
    return f"kill -9 {name} (main and pool processes) while its {path} request was at the PBX"


def _worker_heal(run: Run) -> str:
    for name in ("worker-1", "worker-2"):
        service = run.topology.services[name]
        if not service.running():
            service.start()
            return f"{name} started again"
    return "both workers running"


def _beat_kill(run: Run) -> str:
    run.topology.services["beat"].kill9()
    return "kill -9 beat"


def _beat_heal(run: Run) -> str:
    run.topology.services["beat"].start()
    return "beat started again (same schedule file)"


def _second_beat(run: Run) -> str:
    run.topology.second_beat()
    return "a second `celery beat` started (its own schedule file)"


def _second_beat_stop(run: Run) -> str:
    run.topology.services["beat-2"].stop()
    return "second beat stopped"


def _postgres_stop(run: Run) -> str:
    run.topology.services["postgres"].stop()
    return "PostgreSQL stopped (fast shutdown)"


def _postgres_start(run: Run) -> str:
    run.topology.services["postgres"].restart_ready()
    return "PostgreSQL started again"


def _clock_back(run: Run) -> str:
    step = run.args.clock_step
    run.topology.clock_step(-step)
    return (
        f"wall clock of both Daphnes, both workers and beat stepped back {step:g} s "
        "(libfaketime); Redis and PostgreSQL keep the real clock"
    )


def _recover_from_block_end(run: Run, result: PhaseResult) -> float:
    """After a 403 the product stays silent for its own block time: recovery starts then."""
    first = next(
        (
            e.at
            for e in run.sim.requests_log.snapshot()
            if e.at >= result.inject_at and e.status == 403
        ),  # type: ignore[attr-defined]
        None,
    )
    if first is None:
        return result.heal_at
    result.extra.append(f"first 403 at +{first - result.inject_at:.1f} s")
    return max(result.heal_at, first + run.args.block_seconds)


def faults(args: argparse.Namespace, lock_ttl: float) -> list[Fault]:
    pbx_recover = BACKOFF_MAX + 10
    unreachable = (
        "TVs show the PBX unreachable; the poller backs off (≤ {m:g} s); fresh again ≤ {r:g} s "
        "after the PBX recovers"
    )
    return [
        Fault(
            "pbx-500", unreachable.format(m=BACKOFF_MAX, r=pbx_recover) + "; actions audited",
            inject=_set_pbx_fault("html500"), heal=_set_pbx_fault(None),
            recover_within=pbx_recover, actions_within=ACTION_LONGEST + 4,
        ),
        Fault(
            "pbx-html", "200 with an HTML page: as pbx-500",
            inject=_set_pbx_fault("html200"), heal=_set_pbx_fault(None),
            recover_within=pbx_recover, actions_within=ACTION_LONGEST + 4,
        ),
        Fault(
            "pbx-slow", f"every answer {SLOW_PBX_SECONDS:g} s late (past the read timeout): as "
            f"pbx-500; every action answered ≤ {ACTION_LONGEST + 4:g} s",
            inject=_set_pbx_fault("timeout"), heal=_set_pbx_fault(None),
            recover_within=pbx_recover, actions_within=ACTION_LONGEST + 4,
        ),
        Fault(
            "pbx-trickle", f"answers a byte per {TRICKLE_SECONDS:g} s (no read ever times out): "
            f"as pbx-slow",
            inject=_set_pbx_fault("trickle"), heal=_set_pbx_fault(None),
            recover_within=pbx_recover, actions_within=ACTION_LONGEST + 4,
        ),
        Fault(
            "pbx-403", "nothing sent from the first 403 until the product's block ends "
            f"({args.block_seconds:g} s); TVs show 'blocked'; fresh ≤ 15 s after the block",
            inject=_set_pbx_fault("forbidden"), heal=_set_pbx_fault(None),
            recover_within=15, recover_from=_recover_from_block_end,
        ),
        Fault(
            "redis-restart", "no burst over the budget; actions refused without a PBX request "
            "meanwhile; every TV fresh ≤ 30 s after",
            inject=_redis_restart, instant=True, recover_within=30,
        ),
        Fault(
            "redis-flush", "as redis-restart (the budget forgets its window: must not burst)",
            inject=_redis_flush, instant=True, recover_within=30,
        ),
        Fault(
            "daphne-kill", "its TVs reconnect through nginx to the other Daphne ≤ 10 s; every "
            "TV fresh ≤ 15 s after the kill; in-flight actions pending, never unaudited",
            inject=_daphne_kill, heal=_daphne_heal, instant=True,
            reconnect_within=10, recover_within=15, stale_within=15 + NOTICE,
        ),
        Fault(
            "worker-kill", f"the other worker polls once the dead tick's lock expires "
            f"({lock_ttl:.1f} s): every TV fresh ≤ {lock_ttl + 10:.0f} s after the kill",
            inject=_worker_kill, heal=_worker_heal, instant=True,
            recover_within=lock_ttl + 10,
        ),
        Fault(
            "beat-kill", "no polls while beat is down (the one beat is the clock); fresh ≤ 10 s "
            "after it is started again",
            inject=_beat_kill, heal=_beat_heal, recover_within=10,
        ),
        Fault(
            "two-beats", f"the poll lock keeps one tick at a time: no TV stale (≤ {NOTICE:g} s "
            "without fresh data), no burst",
            inject=_second_beat, heal=_second_beat_stop, recover_within=NOTICE,
            stale_within=NOTICE,
        ),
        Fault(
            "postgres-restart", f"boards never notice (≤ {NOTICE:g} s without fresh data); "
            "actions meanwhile refused and never sent unaudited",
            inject=_postgres_stop, heal=_postgres_start, recover_within=NOTICE,
            stale_within=NOTICE,
        ),
        Fault(
            "clock-back", f"wall clock {args.clock_step:g} s back: no burst, no 403; every TV "
            "fresh ≤ 15 s after the step",
            inject=_clock_back, instant=True, recover_within=15,
        ),
    ]  # fmt: skip


# --- one phase ------------------------------------------------------------------------------


def all_fresh_now(records: Sequence[TvRecord], now: float) -> bool:
    """Every TV connected and fresh: by its data, or for a plain one by the page's banner."""

    def last(record: TvRecord) -> float | None:
        times = record.shown if record.plain else [t for t, _ in record.fresh]
        return times[-1] if times else None

    return all(r.connected and (t := last(r)) is not None and now - t < NOTICE for r in records)


def wait_all_fresh(run: Run, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all_fresh_now(run.tvs.records, time.monotonic()):
            return True
        time.sleep(0.25)
    return False


def recovered_at(run: Run, origin: float) -> float | None:
    """When the last TV got fresh data again for good (`stable_recovery`); None until all did."""
    now = time.monotonic()
    latest = origin
    for record in run.tvs.records:
        if record.plain:
            continue
        start = stable_recovery(
            record.fresh, origin=origin, now=now, notice=NOTICE, settle=SETTLE,
        )  # fmt: skip
        if start is None:
            return None
        latest = max(latest, start)
    return latest


def run_phase(run: Run, fault: Fault) -> PhaseResult:
    duration = run.args.duration
    result = PhaseResult(fault=fault, start=time.monotonic())
    run.supervisor.phase = fault.name
    run.log(f"--- {fault.name}: {fault.expected}")
    result.baseline_fresh = wait_all_fresh(run, timeout=90)
    if not result.baseline_fresh:
        run.log("    not every TV had fresh data before the fault (noted)")
    result.inject_at = time.monotonic()
    notes = [fault.inject(run) or ""]
    run.log(f"    injected: {notes[0]}")
    time.sleep(max(0.0, result.inject_at + duration - time.monotonic()))
    result.heal_at = time.monotonic() if not fault.instant else result.inject_at
    if fault.heal is not None:
        healed = fault.heal(run) or ""
        notes.append(healed)
        run.log(f"    healed: {healed}")
    result.note = "; ".join(n for n in notes if n)
    result.origin = (
        fault.recover_from(run, result) if fault.recover_from is not None else result.heal_at
    )
    deadline = result.origin + (fault.recover_within or 30) + 60 + SETTLE
    while time.monotonic() < deadline:
        done = recovered_at(run, result.origin)
        if done is not None:
            result.recover = done - result.origin
            break
        time.sleep(0.25)
    result.end = time.monotonic()
    measure_phase(run, result)
    return result


def measure_phase(run: Run, result: PhaseResult) -> None:
    fault = result.fault
    everything = run.sim.requests_log.snapshot()  # type: ignore[attr-defined]
    log = [e for e in everything if result.start <= e.at <= result.end]
    result.requests = len(log)
    lead_in = [e.at for e in everything if result.start - WINDOW < e.at <= result.end]
    result.max_5s = max_in_window(lead_in, WINDOW, since=result.start)
    result.refusals = sum(1 for t in run.pbx.refusals if result.start <= t <= result.end)
    for record in run.tvs.records:
        if record.plain:
            gap = longest_gap(record.shown, result.inject_at, result.end)
            result.shown_stale = max(result.shown_stale, gap)
        else:
            received = [t for t, _ in record.fresh]
            result.stale = max(result.stale, longest_gap(received, result.inject_at, result.end))
        for at, state in record.pbx_states:
            if result.inject_at <= at <= result.end:
                result.pbx_states[state] += 1
    if fault.reconnect_within is not None:
        waits = []
        for record in run.tvs.records:
            closes = [t for t, _ in record.closes if 0 <= t - result.inject_at <= 5]
            if closes:
                again = [t for t in record.opens if t > closes[0]]
                waits.append(again[0] - result.inject_at if again else float("inf"))
        result.dropped_tvs = len(waits)
        result.reconnect = max(waits) if waits else None
    result.actions = [a for a in run.supervisor.snapshot() if a.phase == fault.name]
    if fault.name == "pbx-403":
        _check_quiet_during_block(run, result, log)
    checks = result.checks
    checks.append(Check(f"max {result.max_5s} requests in 5 s ≤ {BUDGET}", result.max_5s <= BUDGET))
    checks.append(Check(f"{result.refusals} rate-limit 403s = 0", result.refusals == 0))
    if fault.recover_within is not None:
        shown = "never" if result.recover is None else f"{result.recover:.1f} s"
        checks.append(
            Check(
                f"fresh after {shown} ≤ {fault.recover_within:g} s",
                result.recover is not None and result.recover <= fault.recover_within,
            )
        )
    if fault.stale_within is not None:
        checks.append(
            Check(f"stale ≤ {result.stale:.1f} s ≤ {fault.stale_within:g} s",
                  result.stale <= fault.stale_within)
        )  # fmt: skip
    if fault.reconnect_within is not None:
        shown = "none dropped" if result.reconnect is None else f"{result.reconnect:.1f} s"
        checks.append(
            Check(
                f"{result.dropped_tvs} TVs reconnected ≤ {shown} ≤ {fault.reconnect_within:g} s",
                result.reconnect is not None and result.reconnect <= fault.reconnect_within,
            )
        )


def _check_quiet_during_block(run: Run, result: PhaseResult, log) -> None:  # type: ignore[no-untyped-def]
    first = next((e.at for e in log if e.at >= result.inject_at and e.status == 403), None)
    if first is None:
        result.checks.append(Check("a 403 reached the product", False))
        return
    # Requests already on their way when the first 403 came back still arrive.
    quiet_from, quiet_to = first + 1.0, first + run.args.block_seconds
    during = [e for e in log if quiet_from <= e.at < quiet_to]
    result.extra.append(f"{len(during)} requests during the block")
    result.checks.append(Check(f"{len(during)} requests during the block = 0", not during))


# --- the whole run --------------------------------------------------------------------------


def audit_rows(topology: Topology) -> list[dict]:
    with psycopg.connect(topology.database_url) as c:
        cursor = c.execute(
            "SELECT created, finished, queue, extension, action, ok, reason "
            "FROM control_memberaction WHERE username = %s ORDER BY created, id",
            (SUPERVISOR,),
        )
        names = [d.name for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["created"] = row["created"].timestamp()
    return rows


def dump(run: Run, results: list[PhaseResult]) -> None:
    """With --keep: what the PBX, the TVs and the supervisor saw, as JSON lines beside the logs
    (times in seconds on the run's monotonic clock)."""
    out = run.topology.dir / "chaos.jsonl"
    rows: list[dict] = []
    for r in results:
        times = {"start": r.start, "inject": r.inject_at, "heal": r.heal_at, "end": r.end}
        rows.append({"phase": r.fault.name, "origin": r.origin, **times})
    for e in run.sim.requests_log.snapshot():  # type: ignore[attr-defined]
        rows.append({"request": e.path, "at": e.at, "status": e.status})
    for tv in run.tvs.records:
        seen = {"fresh": [t for t, _ in tv.fresh], "shown": tv.shown, "pbx": tv.pbx_states}
        rows.append({"tv": tv.name, "opens": tv.opens, "closes": tv.closes, **seen})
    fields = ("phase", "queue", "extension", "sent", "answered", "status", "reason", "error")
    for a in run.supervisor.snapshot():
        rows.append({"action": a.action, **{k: getattr(a, k) for k in fields}})
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"(run data in {out})", flush=True)


def token_leaks(topology: Topology, tokens: list[str]) -> dict[str, int]:
    leaks: dict[str, int] = {}
    for path in topology.logs():
        text = path.read_text(encoding="utf-8", errors="replace")
        found = sum(text.count(token) for token in tokens)
        if found:
            leaks[path.name] = found
    return leaks


def simulator_config(args: argparse.Namespace, password: str) -> SimulatorConfig:
    now = dt.datetime.now(TZ)
    start = None
    if not 8 <= now.hour < 17:  # a busy centre: the simulated day starts at 10:00 (as make run)
        start = now.replace(hour=10, minute=0, second=0, microsecond=0).timestamp()
    return SimulatorConfig(
        port=0, seed=args.seed, queues=args.queues, agents=3 * args.queues, user=SIM_USER,
        password=password, autopilot=True, start_time=start, rate_limit=PBX_LIMIT,
        rate_window=WINDOW, block_seconds=args.block_seconds, fault_delay=SLOW_PBX_SECONDS,
        fault_trickle_seconds=TRICKLE_SECONDS,
    )  # fmt: skip


def lock_ttl_of(topology: Topology) -> float:
    out = django_shell(
        topology.product_env(clock=False),
        "from wallboard.live import poller; print(poller.lock_ttl_seconds())",
    )
    return float(out.strip().splitlines()[-1])


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() + (" (with local changes)" if dirty.stdout.strip() else "")


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int]):
    """Left-aligned columns; long cells wrap within their column."""

    def lines(row: Sequence[str]) -> list[str]:
        cells = [textwrap.wrap(str(c), w) or [""] for c, w in zip(row, widths, strict=True)]
        height = max(len(c) for c in cells)
        out = []
        for i in range(height):
            parts = [
                (c[i] if i < len(c) else "").ljust(w) for c, w in zip(cells, widths, strict=True)
            ]
            out.append("  ".join(parts).rstrip())
        return out

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    body = [*lines(headers), rule]
    for row in rows:
        body.extend(lines(row))
    return "\n".join([rule, *body, rule])


def measured_text(r: PhaseResult) -> str:
    parts = [f"max {r.max_5s}/5 s, {r.refusals} limit-403"]
    parts.append("fresh never" if r.recover is None else f"fresh after {r.recover:.1f} s")
    parts.append(f"longest stale {r.stale:.1f} s (the page's banner: {r.shown_stale:.1f} s)")
    if r.fault.reconnect_within is not None:
        parts.append(
            f"{r.dropped_tvs} TVs dropped, back ≤ "
            + ("-" if r.reconnect is None else f"{r.reconnect:.1f} s")
        )
    answers = Counter(a.reason or (f"HTTP {a.status}" if a.status else a.error or "?")
                      for a in r.actions)  # fmt: skip
    slowest = max((a.seconds or 0.0 for a in r.actions), default=0.0)
    parts.append(
        f"{len(r.actions)} actions ("
        + ", ".join(f"{k} {v}" for k, v in sorted(answers.items()))
        + f"; slowest {slowest:.1f} s), {r.audit_missing} unaudited"
    )
    if r.pbx_states:
        parts.append("TVs saw PBX " + ", ".join(sorted(r.pbx_states)))
    parts.extend(r.extra)
    failed = [c.what for c in r.checks if not c.ok]
    if failed:
        parts.append("FAILED: " + "; ".join(failed))
    return "; ".join(parts)


def report(run: Run, results: list[PhaseResult], rows: list[dict], leaks: dict[str, int],
           started: str) -> tuple[str, bool]:  # fmt: skip
    sim = run.sim
    everything = sim.requests_log.snapshot()  # type: ignore[attr-defined]
    pbx_actions = sum(1 for e in everything if e.path.rstrip("/") in ACTION_PATHS and e.status)
    actions = run.supervisor.snapshot()
    slack = run.args.clock_step + 5 if any(r.fault.name == "clock-back" for r in results) else 5
    for r in results:
        # The phase's actions, all finished now (the supervisor has stopped).
        r.actions = [a for a in actions if a.phase == r.fault.name]
        if r.fault.actions_within is not None:
            # Judged on every action in flight while the fault lasted, whichever phase sent it.
            slowest = max(
                (a.seconds if a.seconds is not None else float("inf")
                 for a in actions if in_flight(a, r.inject_at, r.heal_at)),
                default=0.0,
            )  # fmt: skip
            r.checks.append(
                Check(f"slowest action {slowest:.1f} s ≤ {r.fault.actions_within:g} s",
                      slowest <= r.fault.actions_within)
            )  # fmt: skip
        r.audit_missing = audit_missing(r.actions, rows, slack=slack)
        if r.audit_missing:
            r.checks.append(Check(f"{r.audit_missing} answered actions without audit = 0", False))
    table_rows = []
    for r in results:
        table_rows.append(
            [r.fault.name, r.fault.expected, measured_text(r), "PASS" if r.passed else "FAIL"]
        )
    all_max = max_in_window([e.at for e in everything], WINDOW)
    all_refusals = len(run.pbx.refusals)
    answered = [a for a in actions if a.reason is not None]
    missing_all = audit_missing(actions, rows, slack=slack)
    pending = sum(1 for row in rows if row["ok"] is None)
    unaudited_pbx = unaudited_pbx_actions(pbx_actions, rows)
    nginx_leaks = sum(v for k, v in leaks.items() if k in NGINX_LOGS)
    product_leaks = {k: v for k, v in leaks.items() if k not in NGINX_LOGS}
    overall = [
        Check(f"max {all_max} requests in any 5 s ≤ {BUDGET}", all_max <= BUDGET),
        Check(f"{all_refusals} rate-limit 403s = 0", all_refusals == 0),
        Check(f"{missing_all} answered actions without audit = 0", missing_all == 0),
        Check(f"{unaudited_pbx} PBX actions beyond audit rows = 0", unaudited_pbx == 0),
        Check(f"{nginx_leaks} kiosk tokens in nginx logs = 0", nginx_leaks == 0),
    ]
    table_rows.append(
        [
            "whole run",
            f"≤ {BUDGET} requests in any 5 s; no 403 from the rate limit; every answered action "
            "audited; no PBX action without a row; no kiosk token in nginx's logs",
            f"max {all_max}/5 s over {len(everything)} requests; {all_refusals} limit-403; "
            f"{len(actions)} actions, {len(answered)} answered with an outcome, {len(rows)} "
            f"audit rows ({pending} pending/unknown), {missing_all} unaudited; PBX got "
            f"{pbx_actions} pause/unpause; kiosk tokens in nginx's logs: {nginx_leaks}",
            "PASS" if all(c.ok for c in overall) else "FAIL",
        ]
    )
    if not all(c.ok for c in overall):
        table_rows[-1][2] += "; FAILED: " + "; ".join(c.what for c in overall if not c.ok)
    hygiene = Check("no kiosk token in the product's logs", not product_leaks)
    overall.append(hygiene)
    table_rows.append(
        [
            "log hygiene",
            "no kiosk token (a TV's credential) in any process's log",
            "kiosk tokens found: "
            + (", ".join(f"{k} {v}" for k, v in sorted(product_leaks.items())) or "none"),
            "PASS" if hygiene.ok else "FAIL",
        ]
    )
    header = (
        f"Chaos run {started}, {run.args.duration:g} s per fault, "
        f"{len(run.tvs.records)} TVs, {run.args.actions_per_minute:g} actions/min, "
        f"{run.args.queues} queues"
    )
    text = (
        header
        + "\n"
        + text_table(["fault", "expected", "measured", "result"], table_rows, [16, 44, 70, 6])
    )
    details = []
    for r in results:
        before = "" if r.baseline_fresh else "; NOT every TV fresh before the fault"
        details.append(f"  {r.fault.name}: {r.note}; {r.requests} PBX requests{before}")
    if run.tvs.errors:
        details.append("  TV connection errors (last): " + " | ".join(list(run.tvs.errors)[-5:]))
    details.extend(f"  note: {n}" for n in run.notes)
    ok = all(r.passed for r in results) and all(c.ok for c in overall)
    return text + "\n" + "\n".join(details), ok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = argparse.Namespace(block_seconds=60, clock_step=30)
    names = [f.name for f in faults(defaults, LOCK_TTL_DEFAULT)]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fault", action="append", choices=names, metavar="NAME",
                        help="only this fault (repeatable); default: all, in order")  # fmt: skip
    parser.add_argument("--duration", type=float, default=30.0, help="seconds each fault lasts")
    parser.add_argument("--tvs", type=int, default=6, help="kiosk TVs (websockets via nginx)")
    parser.add_argument("--plain-tvs", type=int, default=2,
                        help="of them, TVs as the page (no resync)")  # fmt: skip
    parser.add_argument("--queues", type=int, default=8)
    parser.add_argument("--actions-per-minute", type=float, default=12.0)
    parser.add_argument("--block-seconds", type=float, default=60.0,
                        help="PBX_BLOCK_SECONDS and the simulator's (real PBX: 1800)")  # fmt: skip
    parser.add_argument("--clock-step", type=float, default=30.0, help="clock-back's step, s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the directory with all logs")
    parser.add_argument("--list", action="store_true", help="list the faults and exit")
    args = parser.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    catalogue = faults(args, lock_ttl=LOCK_TTL_DEFAULT)
    if args.list:
        for fault in catalogue:
            print(f"{fault.name:18} {fault.expected}")
        return 0
    chosen = [f.name for f in catalogue if not args.fault or f.name in args.fault]
    clock = "clock-back" in chosen
    missing = tools_missing(clock=clock)
    if missing:
        print(f"Missing: {', '.join(missing)} (`make chaos` installs them with apt-get)")
        return 2
    # The commit the run executes, taken before anything runs.
    started = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit()}"
    print(machine_facts(), flush=True)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_exit)

    password = secrets.token_urlsafe(16)
    sim = start_simulator(simulator_config(args, password))
    topology = Topology(
        sim_url=sim.url, sim_user=SIM_USER, sim_password=password, tvs=args.tvs,
        block_seconds=args.block_seconds, clock=clock, keep=args.keep,
    )  # fmt: skip
    tvs = supervisor = None
    try:
        pbx = PbxWatch(sim)
        credentials = topology.start(lambda text: print(text, flush=True))
        lock_ttl = lock_ttl_of(topology)
        tvs = TvFleet(
            base_url=topology.base_url, tokens=credentials.kiosk_tokens, plain=args.plain_tvs,
            heartbeat=HEARTBEAT, notice_seconds=NOTICE, seed=args.seed, polled=pbx.polled,
        ).start()  # fmt: skip
        supervisor = Supervisor(
            base_url=topology.base_url, token=credentials.api_token, centre=sim.centre,
            per_minute=args.actions_per_minute, seed=args.seed, timeout=120,
        )  # fmt: skip
        run = Run(args, topology, sim, tvs, supervisor, pbx, lock_ttl)
        run.log("waiting until every TV has fresh data")
        if not wait_all_fresh(run, timeout=180):
            run.log("not every TV got fresh data within 180 s; going on (see the table)")
        supervisor.start()
        time.sleep(5)
        results = [run_phase(run, f) for f in faults(args, lock_ttl) if f.name in chosen]
        supervisor.stop()
        time.sleep(2)
        rows = audit_rows(topology)
        leaks = token_leaks(topology, credentials.kiosk_tokens)
        text, ok = report(run, results, rows, leaks, started)
        if args.keep:
            dump(run, results)
        print()
        print(text, flush=True)
        return 0 if ok else 1
    finally:
        if supervisor is not None:
            supervisor.stop()
        if tvs is not None:
            tvs.stop()
        topology.close()
        sim.stop()


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


if __name__ == "__main__":
    sys.exit(main())

"""Freshness benchmark (issue 3): how close the poller runs to the PBX's rate limit.

For each queue count (8 and 20 by default) this starts the PBX simulator in-process, the
product's Daphne and its Celery worker with the embedded beat (`celery -A wallboard worker -B`,
as `make run` does), opens a kiosk websocket for every queue so all of them are watched, and
then measures two phases of --duration seconds each:

1. polling alone;
2. polling while --actions-per-minute agent actions (pause/unpause, alternating per agent) are
   made through the JSON API with a token.

Figures, from what the simulator saw: the per-queue refresh period (interval between successive
queue/status requests for the same queue; median and p95) as a ratio to the (Q+1)/B limit, where
B = budget requests / window (18/5 by default) — goal <= 1.15; the largest number of requests in
any 5-s window (must be <= the budget) and the number of 403s (must be 0); for phase 2 also the
action latency (API round trip) and the time until a board shows the result.

    python bench/freshness.py                  # 8 and 20 queues, 5 minutes per phase
    python bench/freshness.py --quick          # 8 queues, 40 s per phase: a smoke run
    python bench/freshness.py --queues 20 --duration 600
    python bench/freshness.py --reserve 2      # another PBX_ACTION_RESERVE than the default
    python bench/freshness.py --dump d.jsonl   # every request the simulator saw, for analysis
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import secrets
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench.harness import (
    LOOPBACK,
    PY,
    Workspace,
    daphne_argv,
    django_shell,
    free_port,
    machine_facts,
    manage,
    percentile,
    table,
    wallboard_env,
)
from pbxapi.simulator import SimulatorConfig, start_simulator

BUDGET_REQUESTS = 18
BUDGET_WINDOW = 5.0
ACTION_RESERVE = 1  # slots of each window that polls may not use (the product's default)
PBX_LIMIT = 20
STATUS_PATH = "/api/queue/status"
BENCH_USER = "bench-admin"


# --- what the simulator saw ----------------------------------------------------------------


class StatusRecorder:
    """Which queue each queue/status request asked for, and when.

    The simulator's requests_log keeps the path without its query string (which may carry
    customer data), so the queue number is taken where the simulator answers: its in-process
    `centre.queue_status(queue)` is wrapped for this run's instance only.
    """

    def __init__(self, centre) -> None:
        self.calls: list[tuple[float, int]] = []
        original = centre.queue_status

        def recorded(queue: int):
            self.calls.append((time.monotonic(), queue))
            return original(queue)

        centre.queue_status = recorded

    def by_queue(self, start: float, end: float) -> dict[int, list[float]]:
        times: dict[int, list[float]] = defaultdict(list)
        for at, queue in list(self.calls):
            if start <= at < end:
                times[queue].append(at)
        return times


def max_in_window(times: list[float], window: float) -> int:
    """The most requests in any window of that length (sliding, over the given times)."""
    ordered = sorted(times)
    best, low = 0, 0
    for high, at in enumerate(ordered):
        while ordered[low] <= at - window:
            low += 1
        best = max(best, high - low + 1)
    return best


# --- the board's view: a kiosk websocket that keeps every queue watched --------------------


class BoardWatcher:
    """A kiosk websocket in a thread: keeps all queues watched, remembers each snapshot."""

    def __init__(self, url: str, origin: str) -> None:
        self.url, self.origin = url, origin
        self.snapshots: dict[int, dict] = {}
        self.observations: list[tuple[float, int, dict[int, bool]]] = []  # (at, queue, paused)
        self.frames = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="board-watcher", daemon=True)

    def start(self) -> BoardWatcher:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        from websockets.sync.client import connect

        while not self.stopping.is_set():
            try:
                with connect(self.url, origin=self.origin, open_timeout=30) as ws:
                    while not self.stopping.is_set():
                        try:
                            raw = ws.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        self._note(json.loads(raw))
            except Exception as exc:  # the board reconnects, like the real one; noted in the report
                self.error = repr(exc)
                self.stopping.wait(1.0)

    def _note(self, message: dict) -> None:
        self.frames += 1
        if message.get("type") != "snapshot":
            return
        data = message["data"]
        paused = {m["extension"]: bool(m["paused"]) for m in data.get("members", [])}
        with self.lock:
            self.snapshots[data["queue"]] = data
            self.observations.append((time.monotonic(), data["queue"], paused))

    def members(self, queue: int) -> dict[int, bool]:
        with self.lock:
            snapshot = self.snapshots.get(queue) or {}
        return {m["extension"]: bool(m["paused"]) for m in snapshot.get("members", [])}

    def seen_since(self, since: float, queue: int, extension: int, paused: bool) -> float | None:
        with self.lock:
            for at, q, states in self.observations:
                if at >= since and q == queue and states.get(extension) is paused:
                    return at
        return None


# --- actions through the API ----------------------------------------------------------------


@dataclass
class ActionStats:
    made: int = 0
    ok: int = 0
    api_ms: list[float] = field(default_factory=list)
    visible_ms: list[float] = field(default_factory=list)
    not_visible: int = 0
    answers: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def actions_run(
    *, base_url: str, token: str, watcher: BoardWatcher, queues: list[int], per_minute: float,
    until: float, stats: ActionStats, rng: random.Random,
) -> None:  # fmt: skip
    """Pause or unpause (whichever changes the agent) a random member, every 60/per_minute s."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    period = 60.0 / per_minute
    next_at = time.monotonic()
    while next_at < until:
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += period
        queue = rng.choice(queues)
        members = watcher.members(queue)
        if not members:
            continue
        extension = rng.choice(sorted(members))
        target = not members[extension]
        action = "pause" if target else "unpause"
        started = time.monotonic()
        try:
            response = session.post(
                f"{base_url}/api/v1/queues/{queue}/members/{extension}/{action}", timeout=30
            )
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            stats.made += 1
            stats.answers[f"error {type(exc).__name__}"] += 1
            continue
        stats.made += 1
        stats.api_ms.append((time.monotonic() - started) * 1000)
        stats.answers[f"{response.status_code} {body.get('message', body.get('detail'))}"] += 1
        if not body.get("ok"):
            continue
        stats.ok += 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            seen = watcher.seen_since(started, queue, extension, target)
            if seen is not None:
                stats.visible_ms.append((seen - started) * 1000)
                break
            time.sleep(0.02)
        else:
            stats.not_visible += 1


# --- one queue count -------------------------------------------------------------------------


@dataclass
class PhaseResult:
    label: str
    queues: int
    seconds: float
    limit_period: float
    intervals: list[float]
    queue_medians: list[float]
    requests: int
    max_5s: int
    forbidden: int
    status_fetches: int
    starved_queues: int
    mix: dict[str, int]
    actions: ActionStats | None = None
    start: float = 0.0
    end: float = 0.0
    reserve: int = ACTION_RESERVE


def phase_result(
    label: str, *, sim, recorder: StatusRecorder, queue_numbers: list[int], start: float,
    end: float, actions: ActionStats | None = None, reserve: int = ACTION_RESERVE,
) -> PhaseResult:  # fmt: skip
    budget_rate = BUDGET_REQUESTS / BUDGET_WINDOW
    by_queue = recorder.by_queue(start, end)
    intervals: list[float] = []
    medians: list[float] = []
    for queue in queue_numbers:
        times = by_queue.get(queue, [])
        gaps = [b - a for a, b in itertools.pairwise(times)]
        intervals.extend(gaps)
        if gaps:
            medians.append(percentile(gaps, 50))
    log = [entry for entry in sim.requests_log.snapshot() if start <= entry.at < end]
    return PhaseResult(
        label=label,
        queues=len(queue_numbers),
        seconds=end - start,
        limit_period=(len(queue_numbers) + 1) / budget_rate,
        intervals=intervals,
        queue_medians=medians,
        requests=len(log),
        max_5s=max_in_window([e.at for e in log], BUDGET_WINDOW),
        forbidden=sum(1 for e in log if e.status == 403),
        status_fetches=sum(len(t) for t in by_queue.values()),
        starved_queues=sum(1 for q in queue_numbers if len(by_queue.get(q, [])) < 2),
        mix=dict(Counter(f"{e.method} {e.path}" for e in log).most_common()),
        actions=actions,
        start=start,
        end=end,
        reserve=reserve,
    )


def wait_until_all_polled(recorder: StatusRecorder, queues: list[int], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        counts = recorder.by_queue(0, float("inf"))
        if all(len(counts.get(q, [])) >= 2 for q in queues):
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"not every queue was polled twice within {timeout:.0f} s")


def run_queue_count(queues: int, args: argparse.Namespace) -> tuple[list[PhaseResult], int]:
    password = secrets.token_urlsafe(16)
    config = SimulatorConfig(
        port=0, seed=args.seed, queues=queues, agents=max(16, 3 * queues), user="bench",
        password=password, autopilot=True, rate_limit=PBX_LIMIT, rate_window=BUDGET_WINDOW,
    )  # fmt: skip
    sim = start_simulator(config)
    recorder = StatusRecorder(sim.centre)
    queue_numbers = sorted(sim.centre.queue_numbers())
    results: list[PhaseResult] = []
    try:
        with Workspace(f"freshness-q{queues}", keep=args.keep) as ws:
            env = wallboard_env(
                ws, pbx_url=sim.url, pbx_user="bench", pbx_password=password,
                PBX_BUDGET_REQUESTS=str(BUDGET_REQUESTS), PBX_BUDGET_WINDOW=str(BUDGET_WINDOW),
                PBX_ACTION_RESERVE=str(args.reserve),
            )  # fmt: skip
            manage(env, "migrate", "--noinput")
            django_shell(
                env,
                "from django.contrib.auth import get_user_model; "
                f"get_user_model().objects.create_superuser({BENCH_USER!r}, password=None)",
            )
            token = manage(env, "api_token", BENCH_USER).strip()
            kiosk = manage(env, "kiosk_token", "create", "bench-freshness").strip()
            kiosk_token = kiosk.rstrip("/").split("/")[-1]
            port = free_port()
            daphne = ws.child("daphne", daphne_argv("wallboard.asgi:application", port), env=env)
            worker = ws.child(
                "celery",
                [PY, "-m", "celery", "-A", "wallboard", "worker", "-B", "--loglevel=WARNING",
                 "--concurrency=2", "--schedule", str(ws.dir / "celerybeat-schedule")],
                env=env,
            )  # fmt: skip
            daphne.wait_for_port(port)
            base = f"http://{LOOPBACK}:{port}"
            watcher = BoardWatcher(f"ws://{LOOPBACK}:{port}/ws/kiosk/{kiosk_token}/", base)
            watcher.start()
            try:
                ready = wait_until_all_polled(recorder, queue_numbers, timeout=120)
                print(f"[{queues} queues] every queue polled twice after {ready:.1f} s", flush=True)
                time.sleep(args.settle)

                start = time.monotonic()
                time.sleep(args.duration)
                mid = time.monotonic()
                results.append(
                    phase_result(f"{queues} queues, polling", sim=sim, recorder=recorder,
                                 queue_numbers=queue_numbers, start=start, end=mid,
                                 reserve=args.reserve)
                )  # fmt: skip
                print(f"[{queues} queues] phase 1 done", flush=True)

                stats = ActionStats()
                actions_run(
                    base_url=base, token=token, watcher=watcher, queues=queue_numbers,
                    per_minute=args.actions_per_minute, until=mid + args.duration, stats=stats,
                    rng=random.Random(args.seed),
                )  # fmt: skip
                time.sleep(max(0.0, mid + args.duration - time.monotonic()))
                end = time.monotonic()
                results.append(
                    phase_result(
                        f"{queues} queues, +{args.actions_per_minute:g} actions/min", sim=sim,
                        recorder=recorder, queue_numbers=queue_numbers, start=mid, end=end,
                        actions=stats, reserve=args.reserve,
                    )
                )  # fmt: skip
                print(f"[{queues} queues] phase 2 done", flush=True)
            finally:
                watcher.stop()
                if watcher.error:
                    print(f"[{queues} queues] board websocket note: {watcher.error}")
                if not worker.running():
                    print(f"[{queues} queues] the Celery worker died:\n{worker.log_tail()}")
    finally:
        if args.dump:
            with args.dump.open("a") as out:
                for e in sim.requests_log.snapshot():
                    row = {"q": queues, "at": e.at, "path": e.path, "status": e.status}
                    out.write(json.dumps(row) + "\n")
                for at, queue in recorder.calls:
                    out.write(json.dumps({"q": queues, "at": at, "status_of": queue}) + "\n")
                for r in results:
                    row = {"q": queues, "phase": r.label, "start": r.start, "end": r.end}
                    out.write(json.dumps(row) + "\n")
        sim.stop()
    all_forbidden = sum(1 for e in sim.requests_log.snapshot() if e.status == 403)
    return results, all_forbidden


# --- report ------------------------------------------------------------------------------------


def report(results: list[PhaseResult], forbidden_total: dict[int, int]) -> str:
    rows = []
    for r in results:
        median, p95 = percentile(r.intervals, 50), percentile(r.intervals, 95)
        rows.append(
            [
                r.label,
                f"{r.seconds:.0f}",
                f"{r.limit_period:.2f}",
                f"{median:.2f}",
                f"{p95:.2f}",
                f"{median / r.limit_period:.2f}",
                f"{p95 / r.limit_period:.2f}",
                f"{max(r.queue_medians, default=float('nan')) / r.limit_period:.2f}",
                f"{r.requests / r.seconds:.2f}",
                f"{r.max_5s}",
                f"{r.forbidden}",
            ]
        )
    text = table(
        f"Freshness: per-queue refresh period vs the (Q+1)/B limit, B = {BUDGET_REQUESTS}/"
        f"{BUDGET_WINDOW:g} s = {BUDGET_REQUESTS / BUDGET_WINDOW:.1f} req/s; PBX limit "
        f"{PBX_LIMIT}/{BUDGET_WINDOW:g} s",
        ["phase", "secs", "limit s", "median s", "p95 s", "median/limit", "p95/limit",
         "worst queue median/limit", "req/s", "max in 5 s", "403s"],
        rows,
    )  # fmt: skip
    text += "\n" + "\n".join(
        f"  {r.label}: {r.status_fetches} queue/status fetches, {len(r.intervals)} intervals, "
        f"{r.starved_queues} queues fetched fewer than twice; requests: "
        + ", ".join(f"{path} {n}" for path, n in r.mix.items())
        for r in results
    )
    reserve = results[0].reserve if results else ACTION_RESERVE
    floor = BUDGET_REQUESTS / (BUDGET_REQUESTS - reserve)
    text += (
        f"\n  polls may use {BUDGET_REQUESTS - reserve} of the {BUDGET_REQUESTS} slots per "
        f"window ({reserve} kept for actions): polling alone cannot beat "
        f"median/limit = {floor:.3f}"
    )
    for r in results:
        if r.actions is not None and r.seconds > 0:
            # A pause/unpause is one request (its result is shown from the PBX's answer).
            per_window = r.actions.made / r.seconds * BUDGET_WINDOW
            text += (
                f"\n  {r.label}: the actions took {per_window:.1f} requests per window; the "
                "poller leaves the other lanes what they recently used, rounded up (at least "
                f"the reserve of {reserve})"
            )
    text += "\n  403s over each whole run: " + ", ".join(
        f"{q} queues: {n}" for q, n in forbidden_total.items()
    )
    action_rows = []
    for r in results:
        if r.actions is None:
            continue
        a = r.actions
        action_rows.append(
            [
                r.label,
                a.made,
                a.ok,
                percentile(a.api_ms, 50),
                percentile(a.api_ms, 95),
                max(a.api_ms, default=float("nan")),
                percentile(a.visible_ms, 50),
                percentile(a.visible_ms, 95),
                max(a.visible_ms, default=float("nan")),
                a.not_visible,
            ]
        )
    if action_rows:
        text += "\n\n" + table(
            "Actions through the API (pause/unpause): API round trip, and until a board shows it",
            ["phase", "made", "ok", "api p50 ms", "api p95 ms", "api max ms", "board p50 ms",
             "board p95 ms", "board max ms", "not shown in 10 s"],
            action_rows,
        )  # fmt: skip
        for r in results:
            if r.actions is not None:
                answers = ", ".join(f"{k}: {v}" for k, v in sorted(r.actions.answers.items()))
                text += f"\n  answers ({r.label}): {answers}"
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", type=int, nargs="+", default=[8, 20])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds per phase")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument("--actions-per-minute", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep logs and the temp directory")
    parser.add_argument("--reserve", type=int, default=ACTION_RESERVE, help="PBX_ACTION_RESERVE")
    parser.add_argument("--dump", type=Path, help="write every PBX request seen (JSON lines) here")
    parser.add_argument("--quick", action="store_true", help="8 queues, 40 s per phase")
    args = parser.parse_args(argv)
    if args.quick:
        args.queues, args.duration, args.settle = [8], min(args.duration, 40.0), 5.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_facts(), flush=True)
    results: list[PhaseResult] = []
    forbidden: dict[int, int] = {}
    for queues in args.queues:
        phases, forbidden[queues] = run_queue_count(queues, args)
        results.extend(phases)
    print()
    print(report(results, forbidden))
    return 0


if __name__ == "__main__":
    sys.exit(main())

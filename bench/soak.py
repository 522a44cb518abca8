"""Soak benchmark (issue 4): the TV board open in real Chromium, with a web-server restart.

Starts the PBX simulator in-process (autopilot on, a busy call centre), the product's Daphne and
its Celery worker with the embedded beat, and opens the kiosk URL (/kiosk/<token>/) in Debian's
Chromium through Playwright for --duration seconds (30 minutes by default). Halfway through,
Daphne is stopped and started again on the same port (--restarts N: N restarts evenly spread).

Figures: JS heap in use (CDP Runtime.getHeapUsage after HeapProfiler.collectGarbage) and DOM
node count (CDP Memory.getDOMCounters) at start and end — goal: growth under 10 % — sampled
along the way too; at each sample a V8 heap snapshot splits the JS heap into compiled code
(bytecode, optimised code, feedback: grows as V8 compiles each hot function, then stops) and
everything else (what the page keeps); websocket frames received (by type); websockets opened;
how long the board took to be live again after the restart. The benchmark reads the page only
through CDP, so none of Playwright's own script lands in the heap it measures.

    python bench/soak.py                # 30 minutes, one restart halfway
    python bench/soak.py --quick        # 2 minutes: a smoke run
    python bench/soak.py --duration 600 --restarts 4 --sample-every 60 --heap-diff /tmp/d.txt
                                        # what the page kept between samples, by constructor
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import heapsnapshot
from bench.harness import (
    LOOPBACK,
    PY,
    REDIS_URL,
    Workspace,
    daphne_argv,
    free_port,
    machine_facts,
    manage,
    table,
    wallboard_env,
)
from pbxapi.simulator import SimulatorConfig, start_simulator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1920, "height": 1080}
# The connection banner's text while it is shown, else "".
CONN_BANNER = "document.querySelector('[data-banner=\"conn\"]:not([hidden])')?.textContent ?? ''"


@dataclass
class Sample:
    minute: float
    heap_used_mb: float
    heap_total_mb: float
    dom_nodes: int
    elements: int
    listeners: int
    frames: int
    # From a heap snapshot (first and last sample; every sample with --heap-diff).
    code_kib: float | None = None
    other_kib: float | None = None
    # What the page itself could read (performance.memory.usedJSHeapSize), for comparison only:
    # Chromium rounds it into coarse buckets and refreshes it lazily, so it is not the figure.
    perf_memory_mb: float | None = None


@dataclass
class SocketLog:
    """What the page's websockets did, as Playwright reports it."""

    opened: list[float] = field(default_factory=list)
    closed: list[float] = field(default_factory=list)
    frame_times: list[float] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)

    def attach(self, websocket) -> None:
        self.opened.append(time.time())
        websocket.on("framereceived", self._frame)
        websocket.on("close", lambda _ws: self.closed.append(time.time()))

    def _frame(self, payload) -> None:
        self.frame_times.append(time.time())
        try:
            self.kinds[json.loads(payload).get("type", "?")] += 1
        except (ValueError, TypeError, AttributeError):
            self.kinds["unparsed"] += 1


def page_value(cdp, expression: str):
    """Evaluate a small expression in the page through CDP. Not Playwright's `page.evaluate`:
    that installs Playwright's helper script in the page's own heap on first use, and its
    functions get compiled and optimised as the benchmark calls them, so the figures would partly
    be the benchmark's (tens of KiB) rather than the board's."""
    result = cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
    if "exceptionDetails" in result:
        raise RuntimeError(f"page evaluation failed: {result['exceptionDetails']}")
    return result["result"].get("value")


def sample(cdp, started: float, frames: int) -> Sample:
    """Collect garbage first, so that the heap figure is what the page really keeps."""
    # Page evaluations first: a compiled expression stays cached in the page's heap, so every
    # sample's figure includes them, the first one too (the banner check runs at restarts).
    elements = page_value(cdp, "document.getElementsByTagName('*').length")
    page_value(cdp, CONN_BANNER)
    perf_memory = page_value(cdp, "performance.memory ? performance.memory.usedJSHeapSize : null")
    cdp.send("HeapProfiler.collectGarbage")
    heap = cdp.send("Runtime.getHeapUsage")
    dom = cdp.send("Memory.getDOMCounters")
    return Sample(
        minute=(time.time() - started) / 60,
        heap_used_mb=heap["usedSize"] / 2**20,
        heap_total_mb=heap["totalSize"] / 2**20,
        dom_nodes=int(dom["nodes"]),
        elements=int(elements),
        listeners=int(dom["jsEventListeners"]),
        frames=frames,
        perf_memory_mb=None if perf_memory is None else perf_memory / 2**20,
    )


@dataclass
class Restart:
    stopped_at: float = 0.0
    listening_at: float = 0.0
    attempts_while_down: int = 0  # websockets the page tried to open while Daphne was down
    first_frame_at: float | None = None
    banner_seen: str | None = None
    warm_up: bool = False  # during --warm-up, before the start figure


def restart_daphne(
    ws: Workspace,
    daphne,
    argv: list[str],
    env: dict[str, str],
    port: int,
    page,
    cdp,
    sockets: SocketLog,
    pause: float,
) -> tuple[object, Restart]:
    """Stop Daphne, leave it down `pause` seconds (the board should say it is reconnecting),
    start it again on the same port, then wait until the page has a new socket with data."""
    info = Restart()
    daphne.stop()
    info.stopped_at = time.time()
    down_until = time.monotonic() + pause
    while time.monotonic() < down_until:
        page.wait_for_timeout(250)
        if info.banner_seen is None:
            text = page_value(cdp, CONN_BANNER) or ""
            if "reconnect" in text.lower():
                info.banner_seen = text.strip()
    daphne = ws.child(f"daphne-{len(ws.children)}", argv, env=env)
    daphne.wait_for_port(port)
    info.listening_at = time.time()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        page.wait_for_timeout(100)
        frames = [t for t in sockets.frame_times if t >= info.listening_at]
        if frames:
            info.first_frame_at = frames[0]
            break
    info.attempts_while_down = sum(
        1 for t in sockets.opened if info.stopped_at <= t < info.listening_at
    )
    return daphne, info


def wait_for_snapshots(prefix: str, queues: int, timeout: float) -> float:
    """Wait until the poller has stored a snapshot of every queue, so the TV opens on a board
    that has data (what a TV switched on during the day sees)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            if len(list(client.scan_iter(match=f"{prefix}:snapshot:*", count=200))) >= queues:
                return time.monotonic() - started
            time.sleep(0.5)
    finally:
        client.close()
    raise RuntimeError(f"no snapshot of every queue within {timeout:.0f} s")


def run(args: argparse.Namespace) -> str:
    from playwright.sync_api import sync_playwright

    password = secrets.token_urlsafe(16)
    config = SimulatorConfig(
        port=0, seed=args.seed, queues=args.queues, agents=args.agents, user="bench",
        password=password, autopilot=True, call_rate=args.call_rate, daily_curve=False,
    )  # fmt: skip
    sim = start_simulator(config)
    try:
        with Workspace("soak", keep=args.keep) as ws:
            port = free_port()
            base = f"http://{LOOPBACK}:{port}"
            env = wallboard_env(
                ws, pbx_url=sim.url, pbx_user="bench", pbx_password=password, SITE_URL=base
            )
            manage(env, "migrate", "--noinput")
            kiosk_url = manage(env, "kiosk_token", "create", "bench-soak").strip()
            argv = daphne_argv("wallboard.asgi:application", port)
            daphne = ws.child("daphne", argv, env=env)
            worker = ws.child(
                "celery",
                [PY, "-m", "celery", "-A", "wallboard", "worker", "-B", "--loglevel=WARNING",
                 "--concurrency=2", "--schedule", str(ws.dir / "celerybeat-schedule")],
                env=env,
            )  # fmt: skip
            daphne.wait_for_port(port)
            if not args.open_early:
                waited = wait_for_snapshots(ws.prefix, args.queues, timeout=120)
                print(f"soak: every queue had a snapshot after {waited:.1f} s", flush=True)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                print(f"browser: Chromium {browser.version} ({CHROMIUM})", flush=True)
                try:
                    return soak(args, ws, browser, kiosk_url, daphne, argv, env, port, worker)
                finally:
                    browser.close()
    finally:
        sim.stop()


def soak(args, ws, browser, kiosk_url, daphne, argv, env, port, worker) -> str:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    sockets = SocketLog()
    errors: list[str] = []
    page.on("websocket", sockets.attach)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on(
        "response",
        lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
    )
    page.goto(kiosk_url, wait_until="load")
    cdp = context.new_cdp_session(page)
    started = time.time()
    snapshots = HeapSnapshots(cdp, ws.dir, args.heap_diff)
    samples: list[Sample] = []
    restarts: list[Restart] = []

    def take_sample(label: str) -> Sample:
        samples.append(sample(cdp, started, len(sockets.frame_times)))
        snapshots.take(samples[-1])
        print(f"soak: {label} {samples[-1]}", flush=True)
        return samples[-1]

    def phase(seconds: float, restart_count: int, warm_up: bool = False) -> None:
        """Let the board run, sampling every --sample-every s, with Daphne restarts evenly
        spread (one restart = halfway)."""
        nonlocal daphne
        begin = time.time()
        restart_at = [
            begin + seconds * k / (restart_count + 1) for k in range(1, restart_count + 1)
        ]
        end_at = begin + seconds
        next_sample = begin + args.sample_every
        while time.time() < end_at:
            page.wait_for_timeout(1000)
            if restart_at and time.time() >= restart_at[0]:
                restart_at.pop(0)
                daphne, restart = restart_daphne(
                    ws, daphne, argv, env, port, page, cdp, sockets, args.down_seconds
                )
                restart.warm_up = warm_up
                restarts.append(restart)
                print(f"soak: Daphne restarted: {restart}", flush=True)
            if time.time() >= next_sample and next_sample < end_at - args.sample_every / 2:
                take_sample("sample")
                next_sample += args.sample_every

    page.wait_for_timeout(args.settle * 1000)
    take_sample(f"first sample ({args.settle:.0f} s)")
    # Taking a snapshot must not change what the next sample measures.
    cdp.send("HeapProfiler.collectGarbage")
    after = cdp.send("Runtime.getHeapUsage")["usedSize"] / 2**20
    print(f"soak: JS heap used right after the first snapshot: {after:.3f} MiB", flush=True)
    if args.warm_up:
        # V8 compiles and optimises each function once it has run often enough, the reconnect
        # path only at the first reconnect: run those once before the start figure.
        phase(args.warm_up, 1, warm_up=True)
        take_sample("soak start, after the warm-up")
    start_index = len(samples) - 1
    phase(args.duration, args.restarts)
    take_sample("end")
    if args.heap_diff:
        snapshots.write()
        print(f"soak: heap snapshot diffs in {args.heap_diff}", flush=True)
    if not worker.running():
        errors.append("the Celery worker died: " + worker.log_tail(10))
    screenshot = ws.dir / "soak-end.png"
    page.screenshot(path=str(screenshot))
    context.close()
    kept = screenshot if args.keep else None
    return report(args, samples, start_index, sockets, restarts, errors, kept)


class HeapSnapshots:
    """V8 heap snapshots, taken right after a sample's figures (so they cannot disturb them):
    always at the first and the last sample, to split the JS heap into compiled code and the
    rest; with --heap-diff at every sample, kept in PATH.snapshots/, and a diff written to PATH
    (first -> last, then each step)."""

    def __init__(self, cdp, work_dir: Path, diff_path: Path | None):
        self.cdp = cdp
        self.diff_path = diff_path
        self.dir = diff_path.with_suffix(".snapshots") if diff_path else work_dir / "heap"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.taken: list[tuple[Sample, Path]] = []

    def take(self, at: Sample) -> None:
        path = self.dir / f"{len(self.taken):02d}-{at.minute:05.1f}min.heapsnapshot"
        at.code_kib, at.other_kib = (
            size / 1024 for size in heapsnapshot.split(heapsnapshot.take(self.cdp, path))
        )
        self.taken.append((at, path))

    def write(self) -> None:
        def load(path: Path) -> dict:
            return json.loads(path.read_text())

        (s0, p0), (s1, p1) = self.taken[0], self.taken[-1]
        parts = [f"## first ({s0.minute:.1f} min) -> last ({s1.minute:.1f} min)\n"]
        parts.append(heapsnapshot.diff(load(p0), load(p1)))
        for (sa, pa), (sb, pb) in itertools.pairwise(self.taken):
            parts.append(f"\n\n## {sa.minute:.1f} min -> {sb.minute:.1f} min\n")
            parts.append(heapsnapshot.diff(load(pa), load(pb), top=15, paths=6))
        self.diff_path.write_text("".join(parts) + "\n")


def warm_up_said(seconds: float) -> str:
    return f", then {seconds / 60:.0f} min warm-up with a restart" if seconds else ""


def restarts_said(n: int) -> str:
    if n == 0:
        return "no Daphne restart"
    if n == 1:
        return "Daphne restarted once halfway"
    return f"Daphne restarted {n} times, evenly spread"


def growth(first: float | None, last: float | None) -> str:
    return f"{(last - first) / first * 100:+.1f} %" if first and last is not None else "n/a"


def kib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def report(args, samples: list[Sample], start_index: int, sockets: SocketLog,
           restarts: list[Restart], errors: list[str], screenshot: Path | None) -> str:  # fmt: skip
    first, last = samples[start_index], samples[-1]
    ok = lambda a, b: "yes" if a and (b - a) / a < 0.10 else "NO"  # noqa: E731
    # With --warm-up, the growth from the very first sample is shown too: the warm-up is not
    # allowed to hide anything.
    from_first_sample = [
        [
            f"JS heap used (MiB) from the {args.settle:.0f}-s sample",
            samples[0].heap_used_mb,
            last.heap_used_mb,
            growth(samples[0].heap_used_mb, last.heap_used_mb),
            ok(samples[0].heap_used_mb, last.heap_used_mb),
        ]
    ][: 1 if start_index else 0]
    lines = [
        table(
            f"Soak: TV board (kiosk) in Chromium for {args.duration / 60:.0f} min "
            f"(+{args.settle:.0f} s settle{warm_up_said(args.warm_up)}), "
            f"{restarts_said(args.restarts)}",
            ["figure", "start", "end", "growth", "< 10 %"],
            [
                [
                    "JS heap used (MiB)",
                    first.heap_used_mb,
                    last.heap_used_mb,
                    growth(first.heap_used_mb, last.heap_used_mb),
                    ok(first.heap_used_mb, last.heap_used_mb),
                ],
                *from_first_sample,
                [
                    "  of which compiled code (KiB)",
                    kib(first.code_kib),
                    kib(last.code_kib),
                    growth(first.code_kib, last.code_kib),
                    "",
                ],
                [
                    "  of which everything else (KiB)",
                    kib(first.other_kib),
                    kib(last.other_kib),
                    growth(first.other_kib, last.other_kib),
                    "",
                ],
                [
                    "JS heap total (MiB)",
                    first.heap_total_mb,
                    last.heap_total_mb,
                    growth(first.heap_total_mb, last.heap_total_mb),
                    "",
                ],
                [
                    "DOM nodes (CDP)",
                    first.dom_nodes,
                    last.dom_nodes,
                    growth(first.dom_nodes, last.dom_nodes),
                    ok(first.dom_nodes, last.dom_nodes),
                ],
                [
                    "elements (getElementsByTagName)",
                    first.elements,
                    last.elements,
                    growth(first.elements, last.elements),
                    "",
                ],
                [
                    "JS event listeners",
                    first.listeners,
                    last.listeners,
                    growth(first.listeners, last.listeners),
                    "",
                ],
            ],
        ),
        "",
        table(
            "Samples (after a forced GC)",
            [
                "minute",
                "heap used MiB",
                "code KiB",
                "other KiB",
                "DOM nodes",
                "elements",
                "listeners",
                "frames so far",
            ],
            [
                [
                    f"{s.minute:.1f}" + (" start" if i == start_index and start_index else ""),
                    s.heap_used_mb,
                    kib(s.code_kib),
                    kib(s.other_kib),
                    s.dom_nodes,
                    s.elements,
                    s.listeners,
                    s.frames,
                ]
                for i, s in enumerate(samples)
            ],
        ),
        "",
        "performance.memory.usedJSHeapSize (what the page could read; bucketed, not used): "
        + ", ".join(
            f"{s.minute:.1f} min {s.perf_memory_mb:.3f} MiB"
            for s in (samples[0], last)
            if s.perf_memory_mb is not None
        ),
        f"websocket frames received: {len(sockets.frame_times)} ("
        + ", ".join(f"{k} {n}" for k, n in sockets.kinds.most_common())
        + f"); websockets opened: {len(sockets.opened)}, closed: {len(sockets.closed)}",
    ]
    for n, restart in enumerate(restarts, 1):
        label = "restart" if len(restarts) == 1 else f"restart {n}"
        label += " (warm-up)" if restart.warm_up else ""
        down = restart.listening_at - restart.stopped_at
        if restart.first_frame_at is not None:
            after_up = restart.first_frame_at - restart.listening_at
            total = restart.first_frame_at - restart.stopped_at
            lines.append(
                f"{label}: Daphne down {down:.1f} s; board live again {after_up:.1f} s after "
                f"Daphne listened ({total:.1f} s after it stopped); the page tried "
                f"{restart.attempts_while_down} websocket connections while Daphne was down"
            )
        else:
            lines.append(f"{label}: Daphne down {down:.1f} s; the board did NOT reconnect")
        lines.append(f"{label}: banner while down: {restart.banner_seen or 'none seen'}")
    # The browser logs each refused websocket attempt while Daphne is down: expected, counted apart.
    refused = [e for e in errors if "ERR_CONNECTION_REFUSED" in e]
    other = [e for e in errors if "ERR_CONNECTION_REFUSED" not in e]
    lines.append(
        f"page/console errors: {len(other)} (plus {len(refused)} refused websocket attempts "
        "logged by the browser while Daphne was down)"
    )
    lines.extend(f"  {e[:200]}" for e in other[:5])
    if screenshot is not None:
        lines.append(f"screenshot: {screenshot}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds")
    parser.add_argument(
        "--settle", type=float, default=30.0, help="seconds before the start sample"
    )
    parser.add_argument("--sample-every", type=float, default=300.0, help="seconds")
    parser.add_argument(
        "--restarts", type=int, default=1, help="Daphne restarts, evenly spread (default: halfway)"
    )
    parser.add_argument(
        "--heap-diff",
        type=Path,
        metavar="PATH",
        help="take a V8 heap snapshot at every sample (kept in PATH.snapshots/) and write what "
        "the page kept between them, by kind of object, to PATH",
    )
    parser.add_argument(
        "--warm-up",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="run the board this long (with one Daphne restart) after the first sample and take "
        "the start figure after it; growth from the first sample is reported too (default: 0, "
        "the start figure is the first sample)",
    )
    parser.add_argument("--down-seconds", type=float, default=5.0, help="Daphne stays down")
    parser.add_argument("--queues", type=int, default=4)
    parser.add_argument("--agents", type=int, default=24)
    parser.add_argument("--call-rate", type=float, default=4.0, help="calls/min per queue")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--open-early",
        action="store_true",
        help="open the TV before the poller's first snapshots (default: wait for them)",
    )
    parser.add_argument("--keep", action="store_true", help="keep logs, a screenshot, the temp dir")
    parser.add_argument("--quick", action="store_true", help="2 minutes, samples every 30 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.settle, args.sample_every = 120.0, 10.0, 30.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_facts(), flush=True)
    text = run(args)
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

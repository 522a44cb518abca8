"""Soak benchmark (issue 4): the TV board open in real Chromium, with a web-server restart.

Starts the PBX simulator in-process (autopilot on, a busy call centre), the product's Daphne and
its Celery worker with the embedded beat, and opens the kiosk URL (/kiosk/<token>/) in Debian's
Chromium through Playwright for --duration seconds (30 minutes by default). Halfway through,
Daphne is stopped and started again on the same port.

Figures: JS heap in use (CDP Runtime.getHeapUsage after HeapProfiler.collectGarbage) and DOM
node count (CDP Memory.getDOMCounters) at start and end — goal: growth under 10 % — sampled
along the way too; websocket frames received (by type); websockets opened; how long the board
took to be live again after the restart.

    python bench/soak.py                # 30 minutes
    python bench/soak.py --quick        # 2 minutes: a smoke run
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


@dataclass
class Sample:
    minute: float
    heap_used_mb: float
    heap_total_mb: float
    dom_nodes: int
    elements: int
    listeners: int
    frames: int


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


def sample(page, cdp, started: float, frames: int) -> Sample:
    """Collect garbage first, so that the heap figure is what the page really keeps."""
    cdp.send("HeapProfiler.collectGarbage")
    heap = cdp.send("Runtime.getHeapUsage")
    dom = cdp.send("Memory.getDOMCounters")
    elements = page.evaluate("document.getElementsByTagName('*').length")
    return Sample(
        minute=(time.time() - started) / 60,
        heap_used_mb=heap["usedSize"] / 2**20,
        heap_total_mb=heap["totalSize"] / 2**20,
        dom_nodes=int(dom["nodes"]),
        elements=int(elements),
        listeners=int(dom["jsEventListeners"]),
        frames=frames,
    )


@dataclass
class Restart:
    stopped_at: float = 0.0
    listening_at: float = 0.0
    attempts_while_down: int = 0  # websockets the page tried to open while Daphne was down
    first_frame_at: float | None = None
    banner_seen: str | None = None


def restart_daphne(ws: Workspace, daphne, argv: list[str], env: dict[str, str], port: int,
                   page, sockets: SocketLog, pause: float) -> tuple[object, Restart]:  # fmt: skip
    """Stop Daphne, leave it down `pause` seconds (the board should say it is reconnecting),
    start it again on the same port, then wait until the page has a new socket with data."""
    info = Restart()
    daphne.stop()
    info.stopped_at = time.time()
    down_until = time.monotonic() + pause
    while time.monotonic() < down_until:
        page.wait_for_timeout(250)
        text = page.evaluate("document.body.innerText")
        if info.banner_seen is None and "reconnect" in text.lower():
            info.banner_seen = next(
                line.strip() for line in text.splitlines() if "reconnect" in line.lower()
            )
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
    page.wait_for_timeout(args.settle * 1000)
    samples = [sample(page, cdp, started, len(sockets.frame_times))]
    print(f"soak: start sample {samples[0]}", flush=True)

    restart: Restart | None = None
    restart_at = started + args.settle + args.duration / 2
    end_at = started + args.settle + args.duration
    next_sample = time.time() + args.sample_every
    while time.time() < end_at:
        page.wait_for_timeout(1000)
        if restart is None and time.time() >= restart_at:
            daphne, restart = restart_daphne(
                ws, daphne, argv, env, port, page, sockets, args.down_seconds
            )
            print(f"soak: Daphne restarted: {restart}", flush=True)
        if time.time() >= next_sample and next_sample < end_at - args.sample_every / 2:
            samples.append(sample(page, cdp, started, len(sockets.frame_times)))
            print(f"soak: {samples[-1]}", flush=True)
            next_sample += args.sample_every
    samples.append(sample(page, cdp, started, len(sockets.frame_times)))
    if not worker.running():
        errors.append("the Celery worker died: " + worker.log_tail(10))
    screenshot = ws.dir / "soak-end.png"
    page.screenshot(path=str(screenshot))
    context.close()
    return report(args, samples, sockets, restart, errors, screenshot if args.keep else None)


def growth(first: float, last: float) -> str:
    return f"{(last - first) / first * 100:+.1f} %" if first else "n/a"


def report(args, samples: list[Sample], sockets: SocketLog, restart: Restart | None,
           errors: list[str], screenshot: Path | None) -> str:  # fmt: skip
    first, last = samples[0], samples[-1]
    ok = lambda a, b: "yes" if a and (b - a) / a < 0.10 else "NO"  # noqa: E731
    lines = [
        table(
            f"Soak: TV board (kiosk) in Chromium for {args.duration / 60:.0f} min "
            f"(+{args.settle:.0f} s settle), Daphne restarted once halfway",
            ["figure", "start", "end", "growth", "< 10 %"],
            [
                [
                    "JS heap used (MiB)",
                    first.heap_used_mb,
                    last.heap_used_mb,
                    growth(first.heap_used_mb, last.heap_used_mb),
                    ok(first.heap_used_mb, last.heap_used_mb),
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
            ["minute", "heap used MiB", "DOM nodes", "elements", "listeners", "frames so far"],
            [
                [f"{s.minute:.1f}", s.heap_used_mb, s.dom_nodes, s.elements, s.listeners, s.frames]
                for s in samples
            ],
        ),
        "",
        f"websocket frames received: {len(sockets.frame_times)} ("
        + ", ".join(f"{k} {n}" for k, n in sockets.kinds.most_common())
        + f"); websockets opened: {len(sockets.opened)}, closed: {len(sockets.closed)}",
    ]
    if restart is not None:
        down = restart.listening_at - restart.stopped_at
        if restart.first_frame_at is not None:
            after_up = restart.first_frame_at - restart.listening_at
            total = restart.first_frame_at - restart.stopped_at
            lines.append(
                f"restart: Daphne down {down:.1f} s; board live again {after_up:.1f} s after "
                f"Daphne listened ({total:.1f} s after it stopped); the page tried "
                f"{restart.attempts_while_down} websocket connections while Daphne was down"
            )
        else:
            lines.append(f"restart: Daphne down {down:.1f} s; the board did NOT reconnect")
        lines.append(f"restart: banner while down: {restart.banner_seen or 'none seen'}")
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

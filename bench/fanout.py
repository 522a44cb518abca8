"""Fan-out benchmark (issue 3): 1,000 websocket clients, one board update per second.

Measures the latency from publish to receipt (p50, p99; goal p99 <= 300 ms) and the server's CPU
and memory, for two servers in the same run:

- minimal: the smallest Channels broadcast (bench/minimal_broadcast: one Daphne process, one
  group, the default core RedisChannelLayer, pre-serialised text) — the baseline;
- wallboard: the product's Daphne (wallboard.asgi) with kiosk clients on /ws/kiosk/<token>/,
  updates published as the poller publishes them (a snapshot pushed to the `queue.{n}` group
  over the product's channel layer).

Every update carries its publish time (time.time()) in the payload; the clients, in separate
processes on the same machine, parse each frame and subtract. The clients share the machine's
two cores with the server: their CPU is reported next to the server's.

    python bench/fanout.py                # 1,000 clients, 60 updates per server
    python bench/fanout.py --quick        # 100 clients, 10 updates: a smoke run
    python bench/fanout.py --profile      # also py-spy the wallboard's Daphne (pip install py-spy)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import multiprocessing as mp
import os
import queue
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import redis

from bench.harness import (
    LOOPBACK,
    PY,
    REDIS_URL,
    Workspace,
    daphne_argv,
    free_port,
    machine_facts,
    manage,
    percentile,
    raise_open_files_limit,
    table,
    wallboard_env,
)
from bench.ws_clients import PHASE, SENT_AT, ClientResult, client_process

BOARD_QUEUE = 100
WARMUP_UPDATES = 3
DRAIN_SECONDS = 3.0


@dataclass
class RunResult:
    label: str
    clients: int
    connected: int = 0
    connect_seconds: float = 0.0
    updates: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    expected_frames: int = 0
    closed_early: int = 0
    duplicates: int = 0
    server_cpu_pct: float = 0.0
    server_cpu_ms_per_update: float = 0.0
    server_rss_start_mb: float = 0.0
    server_rss_peak_mb: float = 0.0
    clients_cpu_pct: float = 0.0
    redis_cpu_pct: float = float("nan")
    machine_cpu_pct: float = 0.0
    publish_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    profile: str = ""


# --- payload -------------------------------------------------------------------------------


def board_snapshot(*, queue_number: int, version: int, members: int, waiting: int) -> dict:
    """A QueueSnapshot (docs/websocket.md) of a plausible busy queue, so that both servers carry a
    frame of the size a real board update has."""
    now = dt.datetime.now(dt.UTC).astimezone()
    iso = now.isoformat(timespec="seconds")
    states = ["available", "on_call", "ringing", "paused", "offline"]
    return {
        "queue": queue_number,
        "name": f"Queue {queue_number}",
        "version": version,
        "generated_at": iso,
        "fetched": {"queue_status": iso, "calls": iso, "extensions": iso, "queues": iso},
        "counts": {
            "waiting": waiting,
            "members": members,
            "available": 3,
            "ringing": 1,
            "on_call": 5,
            "paused": 2,
            "offline": 1,
        },
        "longest_wait": 95,
        "longest_wait_since": iso,
        "waiting": [
            {
                "unique_id": f"17643{i}.{version}",
                "caller": f"0042191081{i:04d}",
                "caller_name": None,
                "wait_time": 10 * i,
                "since": iso,
            }
            for i in range(waiting)
        ],
        "members": [
            {
                "extension": 200 + i,
                "name": f"Agent Number {i}",
                "state": states[i % 5],
                "state_since": iso,
                "paused": i % 5 == 3,
                "in_use": i % 5 in (1, 2),
                "registered": i % 5 != 4,
                "calls_taken": i * 3,
                "last_call_taken_ago": 60 + i,
                "call": {"peer": f"0042190{i:06d}", "since": iso, "unique_id": f"u{i}.{version}"}
                if i % 5 == 1
                else None,
            }
            for i in range(members)
        ],
        "kpi": {"answered_today": None, "missed_today": None, "service_level": None},
    }


def update_text(version: int, phase: str) -> str:
    """The pre-serialised websocket message both servers send: a `snapshot` whose data carries the
    publish time (set just before publishing, so serialising is part of the measured path)."""
    data = board_snapshot(queue_number=BOARD_QUEUE, version=version, members=12, waiting=4)
    data[SENT_AT] = time.time()
    data[PHASE] = phase
    return json.dumps(
        {"type": "snapshot", "queue": BOARD_QUEUE, "version": version, "data": data},
        separators=(",", ":"),
    )


# --- publishers ----------------------------------------------------------------------------


class MinimalPublisher:
    """group_send on the default core layer, as the minimal broadcast's own code would."""

    def __init__(self, prefix: str, layer: str):
        from channels_redis.core import RedisChannelLayer
        from channels_redis.pubsub import RedisPubSubChannelLayer

        backend = RedisChannelLayer if layer == "core" else RedisPubSubChannelLayer
        self.layer = backend(hosts=[REDIS_URL], prefix=prefix)

    async def publish(self, version: int, phase: str) -> None:
        from bench.minimal_broadcast.consumers import EVENT_TYPE, GROUP

        event = {"type": EVENT_TYPE, "text": update_text(version, phase)}
        await self.layer.group_send(GROUP, event)

    async def close(self) -> None:
        # Not the core layer's flush(), which deletes keys: the Workspace removes the prefix's.
        closer = getattr(self.layer, "close_pools", None) or self.layer.flush
        await closer()


class WallboardPublisher:
    """The poller's own two steps, from a worker thread as the Celery task runs them (sync code,
    async_to_sync inside): store the snapshot in Redis (wallboard.live.store.snapshot_replace,
    which bumps its version) and push it (wallboard.live.push.snapshot_publish: one json.dumps,
    a `board.message` event to the `queue.{n}` group over the product's channel layer)."""

    def __init__(self) -> None:
        from wallboard.live import push, store

        self.push, self.store = push, store

    async def publish(self, version: int, phase: str) -> None:
        await asyncio.to_thread(self._publish_now, version, phase)

    def _publish_now(self, version: int, phase: str) -> None:
        def build(_previous: dict | None) -> dict:
            snapshot = board_snapshot(
                queue_number=BOARD_QUEUE, version=version, members=12, waiting=4
            )
            snapshot[SENT_AT] = time.time()
            snapshot[PHASE] = phase
            return snapshot

        snapshot, _changed = self.store.snapshot_replace(BOARD_QUEUE, build, lambda _a, _b: True)
        self.push.snapshot_publish(snapshot)

    async def close(self) -> None:
        return None


# --- measurement ---------------------------------------------------------------------------


def redis_cpu_seconds(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def rss_mb(procs: list[psutil.Process]) -> float:
    return sum(p.memory_info().rss for p in procs) / 2**20


def start_clients(urls: list[str], origin: str, clients: int, procs: int, concurrency: int):
    """Client processes; process i talks to urls[i % len(urls)] (several servers: an even split,
    as a load balancer would make)."""
    ctx = mp.get_context("spawn")
    status, results, stop_flag = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = []
    for index in range(procs):
        count = clients // procs + (1 if index < clients % procs else 0)
        worker = ctx.Process(
            target=client_process,
            args=(urls[index % len(urls)], origin, count, concurrency, status, results, stop_flag),
            name=f"fanout-clients-{index}",
            daemon=True,
        )
        worker.start()
        workers.append(worker)
    return workers, status, results, stop_flag


def stop_clients(workers, results, stop_flag, timeout: float = 60.0) -> list[ClientResult]:
    stop_flag.set()
    collected: list[ClientResult] = []
    deadline = time.monotonic() + timeout
    while len(collected) < len(workers) and time.monotonic() < deadline:
        try:
            collected.append(results.get(timeout=1.0))
        except queue.Empty:
            continue
    for worker in workers:
        worker.join(timeout=5)
        if worker.is_alive():
            worker.terminate()
            worker.join(timeout=5)
    return collected


def measure(
    label: str,
    *,
    ws_urls: list[str],
    origin: str,
    daphne_pids: list[int],
    publisher,
    args: argparse.Namespace,
    profile_out: Path | None = None,
) -> RunResult:
    """Connect the clients, publish warm-up then timed updates at args.rate per second, collect."""
    result = RunResult(label=label, clients=args.clients)
    servers = [psutil.Process(pid) for pid in daphne_pids]
    rds = redis.Redis.from_url(REDIS_URL)
    workers, status, results, stop_flag = start_clients(
        ws_urls, origin, args.clients, args.client_procs, args.connect_concurrency
    )
    started = time.monotonic()
    try:
        for _ in workers:
            _kind, connected, failed = status.get(timeout=args.connect_timeout)
            result.connected += connected
            if failed:
                result.errors.append(f"{failed} connections failed")
        result.connect_seconds = time.monotonic() - started
        print(
            f"[{label}] {result.connected}/{args.clients} clients connected in "
            f"{result.connect_seconds:.1f} s",
            flush=True,
        )
        time.sleep(2.0)
        clients = [psutil.Process(w.pid) for w in workers]
        asyncio.run(
            _publish_all(label, publisher, servers, clients, rds, result, args, profile_out)
        )
    finally:
        client_results = stop_clients(workers, results, stop_flag)
        rds.close()
    for item in client_results:
        result.latencies_ms.extend(item.latencies_ms)
        result.closed_early += item.closed_early
        result.duplicates += item.duplicates
        result.errors.extend(item.first_errors)
    result.expected_frames = result.updates * result.connected
    return result


async def _publish_all(
    label: str,
    publisher,
    servers: list[psutil.Process],
    clients: list[psutil.Process],
    rds: redis.Redis,
    result: RunResult,
    args: argparse.Namespace,
    profile_out: Path | None,
) -> None:
    period = 1.0 / args.rate
    for version in range(1, WARMUP_UPDATES + 1):
        await publisher.publish(version, "warmup")
        await asyncio.sleep(period)
    await asyncio.sleep(DRAIN_SECONDS)

    profiler = start_profiler(servers[0].pid, args.updates / args.rate, profile_out)
    result.server_rss_start_mb = rss_mb(servers)
    peak = result.server_rss_start_mb
    server_cpu0 = sum(cpu_seconds(s) for s in servers)
    clients_cpu0 = sum(cpu_seconds(c) for c in clients)
    redis_cpu0 = redis_cpu_seconds(rds)
    psutil.cpu_percent(interval=None)
    wall0 = time.monotonic()

    next_at = time.monotonic()
    for index in range(args.updates):
        version = WARMUP_UPDATES + 1 + index
        t0 = time.perf_counter()
        await publisher.publish(version, "measure")
        result.publish_ms.append((time.perf_counter() - t0) * 1000.0)
        result.updates += 1
        peak = max(peak, rss_mb(servers))
        next_at += period
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.sleep(DRAIN_SECONDS)

    wall = time.monotonic() - wall0
    server_cpu = sum(cpu_seconds(s) for s in servers) - server_cpu0
    result.server_cpu_pct = server_cpu / wall * 100
    result.server_cpu_ms_per_update = server_cpu * 1000 / max(1, result.updates)
    result.clients_cpu_pct = sum(cpu_seconds(c) for c in clients) - clients_cpu0
    result.clients_cpu_pct = result.clients_cpu_pct / wall * 100
    result.redis_cpu_pct = (redis_cpu_seconds(rds) - redis_cpu0) / wall * 100
    result.machine_cpu_pct = psutil.cpu_percent(interval=None)
    result.server_rss_peak_mb = max(peak, rss_mb(servers))
    await publisher.close()
    if profiler is not None:
        profiler.wait(timeout=60)
        print(f"[{label}] py-spy profile written to {profile_out}", flush=True)


# --- the two servers -----------------------------------------------------------------------


def run_minimal(args: argparse.Namespace) -> RunResult:
    with Workspace("fanout-minimal", keep=args.keep) as ws:
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            "MINIMAL_BROADCAST_PREFIX": ws.prefix,
            "REDIS_URL": REDIS_URL,
            "MINIMAL_BROADCAST_LAYER": args.minimal_layer,
        }
        daphne = ws.child(
            "daphne-minimal", daphne_argv("bench.minimal_broadcast.asgi:application", port), env=env
        )
        daphne.wait_for_port(port)
        return measure(
            "minimal" if args.minimal_layer == "core" else "minimal (pubsub)",
            ws_urls=[f"ws://{LOOPBACK}:{port}/ws/broadcast/"],
            origin=f"http://{LOOPBACK}:{port}",
            daphne_pids=[daphne.pid],
            publisher=MinimalPublisher(ws.prefix, args.minimal_layer),
            args=args,
        )


def kiosk_token_for(env: dict[str, str], queues: str) -> str:
    """A kiosk URL from the product's own command; returns the token (the URL's last segment)."""
    url = manage(env, "kiosk_token", "create", "bench-fanout", "--queues", queues).strip()
    return url.rstrip("/").split("/")[-1]


def run_wallboard(args: argparse.Namespace) -> RunResult:
    with Workspace("fanout-wallboard", keep=args.keep) as ws:
        # No PBX is contacted: the benchmark publishes the updates itself, as the poller would.
        env = wallboard_env(
            ws,
            pbx_url="http://127.0.0.1:9/",
            pbx_user="bench",
            pbx_password="unused",  # noqa: S106 - no PBX here
        )
        env.update(dict(item.split("=", 1) for item in args.server_env))
        manage(env, "migrate", "--noinput")
        token = kiosk_token_for(env, str(BOARD_QUEUE))
        ports, daphnes = [], []
        for index in range(args.wallboard_servers):
            port = free_port()
            argv = daphne_argv(args.wallboard_asgi, port)
            daphnes.append(ws.child(f"daphne-wallboard-{index}", argv, env=env))
            daphnes[-1].wait_for_port(port)
            ports.append(port)

        os.environ.update({k: env[k] for k in ("REDIS_KEY_PREFIX", "DATABASE_URL", "DEBUG")})
        os.environ.update({k: env[k] for k in ("PBX_API_URL", "PBX_API_USER", "PBX_API_PASSWORD")})
        os.environ["DJANGO_SETTINGS_MODULE"] = "wallboard.settings"
        import django

        django.setup()
        profile_out = ws.dir / "py-spy-wallboard.txt" if args.profile else None
        label = "wallboard"
        if args.wallboard_asgi != "wallboard.asgi:application":
            label += f" ({args.wallboard_asgi.split(':')[0].rsplit('.', 1)[-1]})"
        if args.wallboard_servers > 1:
            label += f" x{args.wallboard_servers} Daphne"
        result = measure(
            label,
            ws_urls=[f"ws://{LOOPBACK}:{port}/ws/kiosk/{token}/" for port in ports],
            origin=f"http://{LOOPBACK}:{ports[0]}",
            daphne_pids=[d.pid for d in daphnes],
            publisher=WallboardPublisher(),
            args=args,
            profile_out=profile_out,
        )
        if profile_out is not None and profile_out.exists():
            result.profile = profile_summary(profile_out)
        return result


# --- profiling -----------------------------------------------------------------------------


def start_profiler(pid: int, seconds: float, out: Path | None) -> subprocess.Popen | None:
    if out is None:
        return None
    py_spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is not installed (pip install py-spy): no profile", flush=True)
        return None
    argv = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds) + 1),
        "--rate",
        "100",
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(out),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


PROFILE_PACKAGES = ("wallboard/", "channels/", "channels_redis/", "asgiref/", "django/")


def _frame(text: str) -> tuple[str, str]:
    """py-spy raw frame `func (path/file.py:line)` -> (`func (file.py)`, path)."""
    name, _, where = text.partition(" (")
    path = where.rsplit(":", 1)[0].rstrip(")")
    return f"{name} ({path.rsplit('/', 1)[-1]})", path


def profile_summary(path: Path, top: int = 15) -> str:
    """Where the sampled time went: self time by leaf function, and inclusive time by function
    of the application stack (wallboard, channels, channels_redis, asgiref, django)."""
    leaf: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        total += count
        leaf[frames[-1][0]] += count
        for name in {name for name, where in frames if where.startswith(PROFILE_PACKAGES)}:
            inclusive[name] += count
    if not total:
        return "(empty profile)"

    def rows(counter: collections.Counter[str]) -> list[tuple[str, int, float]]:
        return [(name, n, n / total * 100) for name, n in counter.most_common(top)]

    headers = ["function", "samples", "% of samples"]
    return "\n\n".join(
        [
            table(
                f"Daphne, self time (top {top}; {total} samples, all threads)", headers, rows(leaf)
            ),
            table(
                f"Daphne, inclusive time in the application stack (top {top})",
                headers,
                rows(inclusive),
            ),
        ]
    )


# --- report --------------------------------------------------------------------------------


def report(results: list[RunResult], args: argparse.Namespace) -> str:
    headers = ["figure", *(r.label for r in results)]

    def row(name: str, fn) -> list[object]:
        return [name, *(fn(r) for r in results)]

    rows = [
        row("clients connected", lambda r: f"{r.connected}/{r.clients}"),
        row("connect time (s)", lambda r: r.connect_seconds),
        row("updates published", lambda r: r.updates),
        row("frames received / expected", lambda r: f"{len(r.latencies_ms)}/{r.expected_frames}"),
        row("sockets closed early", lambda r: r.closed_early),
        row("duplicate frames (ignored)", lambda r: r.duplicates),
        row("latency p50 (ms)", lambda r: percentile(r.latencies_ms, 50)),
        row("latency p90 (ms)", lambda r: percentile(r.latencies_ms, 90)),
        row("latency p99 (ms)", lambda r: percentile(r.latencies_ms, 99)),
        row("latency max (ms)", lambda r: max(r.latencies_ms, default=float("nan"))),
        row("p99 <= 300 ms", lambda r: "yes" if percentile(r.latencies_ms, 99) <= 300 else "NO"),
        row("publish call p50 (ms)", lambda r: percentile(r.publish_ms, 50)),
        row("server CPU (% of one core)", lambda r: r.server_cpu_pct),
        row("server CPU per update (ms)", lambda r: r.server_cpu_ms_per_update),
        row("server RSS start (MiB)", lambda r: r.server_rss_start_mb),
        row("server RSS peak (MiB)", lambda r: r.server_rss_peak_mb),
        row("clients CPU (% of one core)", lambda r: r.clients_cpu_pct),
        row("redis CPU (% of one core)", lambda r: r.redis_cpu_pct),
        row("machine CPU (% of all cores)", lambda r: r.machine_cpu_pct),
        row(
            "others' CPU (% of all cores)",
            lambda r: max(0.0, r.machine_cpu_pct - (r.server_cpu_pct + r.clients_cpu_pct) / 2),
        ),
    ]
    title = (
        f"Fan-out: {args.clients} websocket clients in {args.client_procs} processes, "
        f"{args.rate:g} update/s, {args.updates} timed updates per server"
    )
    text = table(title, headers, rows)
    errors = [f"  {r.label}: {e}" for r in results for e in r.errors[:5]]
    if errors:
        text += "\nclient errors (first few):\n" + "\n".join(errors)
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--client-procs", type=int, default=2, help="client processes")
    parser.add_argument("--updates", type=int, default=60, help="timed updates per server")
    parser.add_argument("--rate", type=float, default=1.0, help="updates per second")
    parser.add_argument(
        "--connect-concurrency", type=int, default=10, help="handshakes in flight per process"
    )
    parser.add_argument("--connect-timeout", type=float, default=180.0)
    parser.add_argument("--only", choices=["both", "minimal", "wallboard"], default="both")
    parser.add_argument(
        "--minimal-layer",
        choices=["core", "pubsub"],
        default="core",
        help="the baseline's channel layer (core = the issue's baseline)",
    )
    parser.add_argument(
        "--wallboard-asgi",
        default="wallboard.asgi:application",
        help="the ASGI application to measure as the product (module:attribute)",
    )
    parser.add_argument(
        "--wallboard-servers",
        type=int,
        default=1,
        help="Daphne processes for the wallboard (clients split evenly, as behind a balancer)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the wallboard's Daphne")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the wallboard's Daphne, e.g. WS_HEARTBEAT_SECONDS=60",
    )
    parser.add_argument("--keep", action="store_true", help="keep logs and the temp directory")
    parser.add_argument("--quick", action="store_true", help="100 clients, 10 updates")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.updates = min(args.clients, 100), min(args.updates, 10)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_facts(), flush=True)
    limit = raise_open_files_limit(args.clients * 2 + 1024)
    print(f"RLIMIT_NOFILE soft limit: {limit}", flush=True)
    results: list[RunResult] = []
    if args.only in ("both", "minimal"):
        results.append(run_minimal(args))
    if args.only in ("both", "wallboard"):
        results.append(run_wallboard(args))
    print()
    print(report(results, args))
    for result in results:
        if result.profile:
            print()
            print(result.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())

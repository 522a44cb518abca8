"""What every benchmark needs: child processes it owns, the wallboard's environment, ports,
percentiles, machine facts and a plain-text table.

Benchmarks start everything they measure themselves, on loopback only, under a unique Redis key
prefix, and stop it all when they end (also on Ctrl-C or an error).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LOOPBACK = "127.0.0.1"


def unique_prefix(name: str) -> str:
    """A Redis key prefix no other run (or test) shares, so cleanup can never touch theirs."""
    return f"bench-{name}-{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    """An unused loopback port. It is released before the server binds it; the race is harmless
    here because the caller checks that the process it starts is the one answering."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def raise_open_files_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE for this process (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ChildProcess:
    """One child process in its own session, its output in a log file, stopped by its own pid."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str], log_dir: Path):
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ChildProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to this child's own process group (Celery forks pool workers), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for_port(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if port_open(port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen on {port} within {timeout:.0f} s")


class Workspace:
    """A temporary directory, the child processes started in it, and the Redis keys they wrote.

    Use as a context manager: on exit every child is stopped (newest first), the prefix's Redis
    keys are deleted (by SCAN on the unique prefix — never a flush) and the directory removed
    unless keep=True.
    """

    def __init__(self, name: str, *, keep: bool = False):
        self.prefix = unique_prefix(name)
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.keep = keep
        self.children: list[ChildProcess] = []

    def __enter__(self) -> Workspace:
        # SIGTERM (and SIGINT, which a background shell ignores) must unwind through __exit__,
        # or the children in their own sessions would outlive the benchmark.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _raise_exit)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def child(self, name: str, argv: Sequence[str], *, env: dict[str, str]) -> ChildProcess:
        proc = ChildProcess(name, argv, env=env, log_dir=self.dir)
        self.children.append(proc)
        return proc.start()

    def close(self) -> None:
        for proc in reversed(self.children):
            proc.stop()
        redis_delete_prefix(self.prefix)
        if self.keep:
            print(f"(kept logs in {self.dir})")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def redis_delete_prefix(prefix: str) -> int:
    """Delete this run's keys: those under its prefix, and Celery's binding for its queue."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    deleted = 0
    try:
        for pattern in (f"{prefix}*", f"_kombu.binding.{prefix}*"):
            batch = list(client.scan_iter(match=pattern, count=500))
            if batch:
                deleted += client.delete(*batch)
    finally:
        client.close()
    return deleted


def throwaway_postgres(server: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """A new database on the PostgreSQL server at ``server`` (whatever database its URL names,
    which need not exist: the server's ``postgres`` database creates it), and a function that
    drops it, ending any connection still open to it."""
    import psycopg  # only a PostgreSQL run needs the driver itself

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin_url = urlunparse(urlparse(server)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunparse(urlparse(server)._replace(path=f"/{name}")), drop


def wallboard_env(
    ws: Workspace, *, pbx_url: str, pbx_user: str, pbx_password: str, **extra: str
) -> dict[str, str]:
    """The environment for the product's processes, pointed at a simulator and this run's prefix."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "wallboard.settings",
        "DEBUG": "1",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": ws.prefix,
        "DATABASE_URL": f"sqlite://{ws.dir / 'db.sqlite3'}",
        "WALLBOARD_VAR_DIR": str(ws.dir / "var"),
        "PBX_API_URL": pbx_url,
        "PBX_API_USER": pbx_user,
        "PBX_API_PASSWORD": pbx_password,
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120.0) -> str:
    """Run `manage.py ARGS` with that environment; returns stdout, raises with stderr on failure."""
    done = subprocess.run(
        [PY, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def django_shell(env: dict[str, str], code: str, timeout: float = 120.0) -> str:
    """Run Python code inside the product's Django (same DB/Redis as its processes)."""
    return manage(env, "shell", "-c", code, timeout=timeout)


def daphne_argv(application: str, port: int) -> list[str]:
    return [PY, "-m", "daphne", "-b", LOOPBACK, "-p", str(port), application]


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts() -> str:
    """nproc, memory, CPU model, Python, the commit and the time: printed first so a recorded
    run says where and on what it ran."""
    import psutil

    mem = psutil.virtual_memory()
    load = os.getloadavg()
    return (
        f"machine: nproc={os.cpu_count()}, memory {mem.total / 2**30:.1f} GiB "
        f"({mem.available / 2**30:.1f} GiB available), CPU {cpu_model()!r}\n"
        f"python {platform.python_version()}, {platform.platform()}\n"
        f"commit {git_commit()}\n"
        f"date {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def git_commit() -> str:
    """The checked-out commit, and "+ changes" when the tree differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A fixed-width text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "-" * len(line(cells[0]))
    body = [line(cells[0]), rule, *(line(r) for r in cells[1:])]
    return "\n".join([title, rule, *body, rule])


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    """with stopwatch() as elapsed: ... ; elapsed[0] is the seconds taken."""
    holder: list[float] = [0.0]
    start = time.perf_counter()
    try:
        yield holder
    finally:
        holder[0] = time.perf_counter() - start

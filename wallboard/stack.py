"""`make run`: bring the whole product up on one machine and say what runs where.

Starts, as child processes: the PBX simulator (unless PBX_API_URL is set), Daphne on
127.0.0.1:8000 (HTTP + websockets), and one Celery worker with the embedded beat (`-B`).
Embedded beat is only safe because this starts exactly one worker; production runs a separate
`celery beat` (docs/architecture.md). Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_for_port(
    host: str, port: int, proc: subprocess.Popen, name: str, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited with code {proc.returncode}; see its output above")
        if _port_open(host, port):
            return
        time.sleep(0.2)
    sys.exit(f"{name} did not open {host}:{port} within {timeout:.0f} s")


def _simulated_day_start(time_zone: str) -> list[str]:
    """Outside office hours the simulated call centre follows the real clock into a quiet night;
    a newcomer should see a busy centre, so start its clock at 10:00 (SIMULATOR_START_AT overrides,
    "now" keeps the real clock)."""
    start_at = os.environ.get("SIMULATOR_START_AT", "")
    if start_at == "now":
        return []
    if start_at:
        return ["--start-at", start_at]
    hour = datetime.now(ZoneInfo(time_zone)).hour
    return [] if 8 <= hour < 17 else ["--start-at", "10:00"]


def main() -> None:
    # `make run` is the newcomer's and developer's entry: DEBUG unless told otherwise.
    # Production runs from the Docker image with DEBUG off and a real SECRET_KEY.
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallboard.settings")
    web_host = os.environ.get("WEB_HOST", "127.0.0.1")
    web_port = int(os.environ.get("WEB_PORT", "8000"))
    # Kiosk URLs printed below must point at this Daphne.
    os.environ.setdefault("SITE_URL", f"http://{web_host}:{web_port}")
    # Django is imported only now: its settings read the environment set above.
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command, get_commands

    from wallboard.live.pbx import pbx_budget

    redis_url = urlparse(settings.REDIS_URL)
    redis_host, redis_port = redis_url.hostname or "127.0.0.1", redis_url.port or 6379
    if not _port_open(redis_host, redis_port):
        sys.exit(
            f"Redis is not reachable at {redis_host}:{redis_port}. Start one (e.g. `redis-server`) "
            "or point REDIS_URL at yours."
        )

    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)

    procs: list[tuple[str, subprocess.Popen]] = []

    def stop_all(*_args) -> None:
        for _name, proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in reversed(procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    lines = []
    if settings.PBX_API_URL:
        lines.append(f"PBX:        {settings.PBX_API_URL} (real PBX, user {settings.PBX_USER})")
    else:
        host, port = settings.SIMULATOR_HOST, settings.SIMULATOR_PORT
        if _port_open(host, port):
            sys.exit(f"Port {port} is taken; set SIMULATOR_PORT to a free one")
        sim_args = [
            PY,
            "-m",
            "pbxapi.simulator",
            "--host",
            host,
            "--port",
            str(port),
            "--user",
            settings.PBX_USER,
            "--password-env",
            "SIMULATOR_SECRET",
        ]
        # A week of call history behind today, and a weekday's traffic on weekends too: a demo.
        sim_args += ["--history-days", "7", "--busy-weekends"]
        sim_args += _simulated_day_start(settings.PBX_TIME_ZONE)
        sim = subprocess.Popen(  # noqa: S603
            sim_args,
            cwd=ROOT,
            env={**os.environ, "SIMULATOR_SECRET": settings.PBX_SECRET},
        )
        procs.append(("simulator", sim))
        _wait_for_port(host, port, sim, "The PBX simulator")
        # A simulator that just started has counted no request: the shared budget need not
        # wait out a cold start (it would, after a Redis restart, for a real PBX).
        pbx_budget().declare_unused()
        lines.append(
            f"PBX:        simulator at {settings.PBX_BASE_URL} (try: {PY} -m pbxapi queues)"
        )

    if "demo_setup" in get_commands():
        call_command("demo_setup")

    daphne = subprocess.Popen(  # noqa: S603
        [
            PY,
            "-m",
            "wallboard.web",
            "-b",
            web_host,
            "-p",
            str(web_port),
            "wallboard.asgi:application",
        ],
        cwd=ROOT,
    )
    procs.append(("daphne", daphne))
    worker = subprocess.Popen(  # noqa: S603
        [
            PY,
            "-m",
            "celery",
            "-A",
            "wallboard",
            "worker",
            "-B",
            "--loglevel=INFO",
            "--concurrency=2",
            "--schedule",
            str(settings.VAR_DIR / "celerybeat-schedule"),
        ],
        cwd=ROOT,
    )
    procs.append(("celery", worker))
    _wait_for_port(web_host, web_port, daphne, "Daphne")
    lines.insert(
        0, f"Wallboard:  http://{web_host}:{web_port}/  (admin: /admin/, API: /api/v1/schema/)"
    )
    lines.append(
        f"Workers:    Celery worker + embedded beat (pid {worker.pid}), Redis {settings.REDIS_URL}"
    )
    print(
        "\n".join(["", "The wallboard is running:", *lines, "Press Ctrl-C to stop.", ""]),
        flush=True,
    )

    while True:
        for name, proc in procs:
            if proc.poll() is not None:
                print(
                    f"{name} exited with code {proc.returncode}; stopping the rest", file=sys.stderr
                )
                stop_all()
        time.sleep(1)


if __name__ == "__main__":
    main()

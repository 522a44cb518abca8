"""No secret in any log line of a full run: Daphne (access log included) and a worker with beat,
both at DEBUG, while a TV, a supervisor and a program use the product and a stranger guesses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import websockets

from tests.conftest import ROOT, free_port, live_environment, wait_for_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def _started(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_a_full_run_logs_no_secret(simulator, file_database, live_settings, tmp_path):
    env = live_environment(live_settings, DATABASE_URL=file_database, LOG_LEVEL="DEBUG")
    env["WS_HEARTBEAT_SECONDS"] = "0.5"
    name = f"logs-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    _manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_superuser({name!r}, password={password!r})",
    )
    kiosk_url = _manage(env, "kiosk_token", "create", f"tv-{name}")
    kiosk_secret = kiosk_url.rstrip("/").rsplit("/", 1)[-1]
    api_secret = _manage(env, "api_token", name)

    port = free_port()
    web = _started(
        [sys.executable, "-m", "wallboard.web", "-b", "127.0.0.1", "-p", str(port),
         "wallboard.asgi:application"],
        env,
        tmp_path / "web.log",
    )  # fmt: skip
    worker = _started(
        [sys.executable, "-m", "celery", "-A", "wallboard", "worker", "-B", "--pool=solo",
         "--loglevel=DEBUG", "-Q", live_settings.CELERY_TASK_DEFAULT_QUEUE,
         "--schedule", str(tmp_path / "beat")],
        env,
        tmp_path / "worker.log",
    )  # fmt: skip
    try:
        wait_for_port(port, web)
        base = f"http://127.0.0.1:{port}"
        # A TV: its page and its socket.
        assert requests.get(f"{base}/kiosk/{kiosk_secret}/", timeout=10).status_code == 200

        async def watch() -> None:
            url = f"ws://127.0.0.1:{port}/ws/kiosk/{kiosk_secret}/"
            async with websockets.connect(url, origin=base) as ws:
                await asyncio.wait_for(ws.recv(), timeout=10)
                await asyncio.sleep(2)  # some polling and heartbeats meanwhile

        asyncio.run(watch())
        # A stranger guessing kiosk URLs and tokens.
        assert requests.get(f"{base}/kiosk/{kiosk_secret[:-2]}xx/", timeout=10).status_code == 404
        wrong = {"Authorization": f"Token {api_secret[:-2]}xx"}
        assert requests.get(f"{base}/api/v1/queues/", headers=wrong, timeout=10).status_code == 401
        # A program with its token.
        good = {"Authorization": f"Token {api_secret}"}
        assert requests.get(f"{base}/api/v1/queues/", headers=good, timeout=10).status_code == 200
        # A supervisor logging in and out.
        browser = requests.Session()
        browser.get(f"{base}/login/", timeout=10)
        token = browser.cookies["csrftoken"]
        login = browser.post(
            f"{base}/login/",
            data={"username": name, "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{base}/login/"},
            timeout=10,
        )
        assert login.status_code == 200 and "sessionid" in browser.cookies
        session_id = browser.cookies["sessionid"]
        assert browser.get(f"{base}/console/", timeout=10).status_code == 200
        time.sleep(1)
    finally:
        for proc in (web, worker):
            proc.terminate()
            proc.wait(timeout=15)

    logs = "\n".join((tmp_path / f).read_text() for f in ("web.log", "worker.log"))
    assert "/kiosk/…/" in logs  # the access log saw the TV, without its token
    assert "GET /api/v1/queues/" in logs
    secrets = {
        "kiosk token": kiosk_secret,
        "API token": api_secret,
        "password": password,
        "session id": session_id,
        "PBX password": live_settings.PBX_SECRET,
        "secret key": os.environ["SECRET_KEY"],
    }
    for what, secret in secrets.items():
        assert secret not in logs, f"the {what} is in the logs"
        assert secret[:-2] not in logs, f"most of the {what} is in the logs"

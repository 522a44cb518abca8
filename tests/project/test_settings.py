"""Start-up refuses configurations that would hurt: the error names the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _start(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "wallboard.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PBX_BUDGET_REQUESTS": "21"}, "PBX_BUDGET_REQUESTS"),
        ({"PBX_BUDGET_WINDOW": "4"}, "PBX_BUDGET_WINDOW"),
        ({"PBX_TIME_ZONE": "Europe/Bratislav"}, "PBX_TIME_ZONE"),
        ({"TIME_ZONE": "CET+1"}, "TIME_ZONE"),
        ({"SITE_URL": "wallboard.example"}, "SITE_URL"),
        ({"PBX_ACTION_RESERVE": "18"}, "PBX_ACTION_RESERVE"),
        ({"HTTPS": "maybe"}, "HTTPS"),
    ],
)
def test_a_bad_setting_stops_start_up_and_names_itself(env, named):
    result = _start(**env)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last and named in last


def test_the_defaults_start():
    assert _start().returncode == 0


def test_https_switches_on_secure_cookies_hsts_and_the_proxy_header():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0, "
        "s.SECURE_PROXY_SSL_HEADER, s.CSRF_TRUSTED_ORIGINS)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "wallboard.settings", "HTTPS": "1",
             "SITE_URL": "https://board.example.sk/"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    assert result.stdout.split("\n")[0] == (
        "True True True ('HTTP_X_FORWARDED_PROTO', 'https') ['https://board.example.sk']"
    )

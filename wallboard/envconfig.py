"""Typed readers for the environment: the only place that touches os.environ.

Each helper raises ImproperlyConfigured with the variable's name on a bad value, so a
typo in a deployment fails at start-up instead of silently falling back to a default.
A secret may also come from a file named by ``<NAME>_FILE`` (Docker/Kubernetes secrets).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_rate(name: str, default: tuple[int, float]) -> tuple[int, float]:
    """A rate written REQUESTS/SECONDS (``20/5``)."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    count, slash, seconds = value.strip().partition("/")
    try:
        rate = (int(count), float(seconds))
    except ValueError:
        rate = (0, 0.0)
    if not slash or rate[0] < 1 or not rate[1] > 0:
        raise ImproperlyConfigured(f"{name}={value!r} must be REQUESTS/SECONDS, e.g. 20/5")
    return rate


def env_time_zone(name: str, default: str) -> str:
    """An IANA time zone name (Europe/Bratislava); refused if this machine does not know it."""
    value = env_str(name, default) or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a known time zone (e.g. Europe/Bratislava)"
        ) from None
    return value


def env_url(name: str, default: str) -> str:
    """An http(s) URL without a trailing slash."""
    value = (env_str(name, default) or default).rstrip("/")
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an http(s) URL")
    return value


def local_secret(path: Path) -> str:
    """A random secret kept in ``path``, created (readable by this user only) on first use.

    For a single machine without SECRET_KEY (a checkout where `make run` and `manage.py` commands
    in another terminal must share one key). Several web nodes must share one SECRET_KEY.
    """
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(50)
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secret)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()  # another process made it meanwhile
    return secret

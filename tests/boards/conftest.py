"""Personas and cached live data for the board tests.

The live data is written through the live part's own store (wallboard.live.store), the seam
the pages read from; each test has its own Redis prefix (tests/conftest.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from wallboard.control.access import ADMIN_GROUP
from wallboard.control.models import TeamLeadAssignment
from wallboard.live.snapshots import KPI_UNKNOWN
from wallboard.live.snapshots import iso as live_iso

QUEUE_A = 100
QUEUE_B = 101


def iso(ts: float) -> str:
    return live_iso(ts)


def member(ext: int, name: str, state: str, *, since: float, paused: bool = False) -> dict:
    return {
        "extension": ext,
        "name": name,
        "state": state,
        "state_since": iso(since),
        "paused": paused,
        "in_use": state in {"on_call", "ringing"},
        "registered": state != "offline",
        "calls_taken": 3,
        "last_call_taken_ago": 120,
        "call": None,
        "answered": None,
        "talk_seconds": None,
    }


def snapshot(queue: int, name: str, members: list[dict], *, waiting: int = 0, now=None) -> dict:
    now = time.time() if now is None else now
    counts: dict[str, Any] = {"waiting": waiting, "members": len(members)}
    for state in ("available", "ringing", "on_call", "paused", "offline"):
        counts[state] = sum(1 for m in members if m["state"] == state)
    return {
        "queue": queue,
        "name": name,
        "version": None,
        "generated_at": iso(now),
        "fetched": {
            "queue_status": iso(now),
            "calls": iso(now),
            "extensions": None,
            "queues": None,
        },
        "counts": counts,
        "longest_wait": 30 if waiting else 0,
        "longest_wait_since": iso(now - 30) if waiting else None,
        "waiting": [],
        "members": members,
        "kpi": dict(KPI_UNKNOWN),
        "staffing": None,
    }


def store_snapshot(data: dict) -> dict:
    from wallboard.live import store

    stored, _changed = store.snapshot_replace(
        data["queue"], lambda _previous: dict(data), lambda _a, _b: True
    )
    return stored


@pytest.fixture
def live_data() -> dict[int, dict]:
    """Two queues in the live cache: A (Sales: Jana available, Peter paused) and B (Support)."""
    from wallboard.live import store

    now = time.time()
    store.source_set(
        store.SOURCE_QUEUES,
        {"fetched": now, "queues": [{"queue": QUEUE_A, "name": "Sales"},
                                    {"queue": QUEUE_B, "name": "Support"}]},
    )  # fmt: skip
    store.source_set(
        store.SOURCE_EXTENSIONS,
        {
            "fetched": now,
            "by_extension": {
                "201": {"name": "Jana Kováčová", "registered": True},
                "202": {"name": "Peter Horváth", "registered": True},
                "203": {"name": "Mária Nováková", "registered": False},
            },
        },
    )
    a = store_snapshot(
        snapshot(
            QUEUE_A,
            "Sales",
            [
                member(201, "Jana Kováčová", "available", since=now - 65),
                member(202, "Peter Horváth", "paused", since=now - 10, paused=True),
            ],
            waiting=2,
        )
    )
    b = store_snapshot(
        snapshot(QUEUE_B, "Support", [member(203, "Mária Nováková", "offline", since=now - 5)])
    )
    return {QUEUE_A: a, QUEUE_B: b}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs seconds per persona on this shared machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def users(db):
    model = get_user_model()
    admin = model.objects.create_superuser("admin", password="pw-admin-123")
    group_admin = model.objects.create_user("groupadmin", password="pw-gadmin-123")
    group_admin.groups.add(Group.objects.create(name=ADMIN_GROUP))
    viewer = model.objects.create_user("viewer", password="pw-viewer-123")
    lead = model.objects.create_user("lead", password="pw-lead-123")
    TeamLeadAssignment.objects.create(user=lead, queue=QUEUE_A)
    inactive = model.objects.create_user("gone", password="pw-gone-123", is_active=False)
    TeamLeadAssignment.objects.create(user=inactive, queue=QUEUE_A)
    return {
        "admin": admin,
        "group_admin": group_admin,
        "viewer": viewer,
        "lead": lead,
        "inactive": inactive,
    }


@pytest.fixture
def client_for(client, users):
    """A test client logged in as the named persona."""

    def login(name: str):
        client.force_login(users[name])
        return client

    return login

"""Reads of the live data, straight from Redis: never a PBX request (docs/contracts.md)."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from wallboard.live import store
from wallboard.live.pbx import pbx_budget
from wallboard.live.snapshots import iso, snapshot_summary


def snapshot_get(*, queue: int) -> dict[str, Any] | None:
    """The stored QueueSnapshot of this queue, or None before its first fetch."""
    return store.snapshot_get(queue)


def snapshots_get(*, queues: list[int]) -> dict[int, dict[str, Any]]:
    """The stored snapshots of these queues (those that exist), in one Redis round trip."""
    return store.snapshots_get(queues)


def known_queue_numbers() -> list[int]:
    """Every queue in the PBX's queue list as last fetched, in order."""
    return [q["queue"] for q in store.known_queues()]


def extensions_get() -> list[dict[str, Any]]:
    """The PBX's extensions as last fetched: ``[{"extension", "name", "registered"}]``."""
    cached = store.source_get(store.SOURCE_EXTENSIONS) or {}
    return [
        {"extension": int(number), "name": row["name"], "registered": row["registered"]}
        for number, row in sorted(
            cached.get("by_extension", {}).items(), key=lambda item: int(item[0])
        )
    ]


def queue_summaries() -> list[dict[str, Any]]:
    """Every known queue with its summary (queue, name, version, counts, longest_wait,
    generated_at); a queue not fetched yet has only its number and name."""
    known = store.known_queues()
    snapshots = store.snapshots_get([q["queue"] for q in known])
    summaries = []
    for entry in known:
        snapshot = snapshots.get(entry["queue"])
        if snapshot is not None:
            summaries.append(snapshot_summary(snapshot))
        else:
            summaries.append(
                {
                    "queue": entry["queue"],
                    "name": entry["name"],
                    "version": 0,
                    "counts": None,
                    "longest_wait": None,
                    "longest_wait_since": None,
                    "generated_at": None,
                    "fetched": None,
                }
            )
    return summaries


def pbx_state_initial() -> dict[str, Any]:
    return {
        "state": "starting",
        "blocked_until": None,
        "unreachable_since": None,
        "last_error": None,
        "checked_at": None,
    }


def pbx_state_get() -> dict[str, Any]:
    """PBXState (docs/websocket.md) with the last success of every source."""
    state = store.pbx_state_raw() or pbx_state_initial()
    state["last_success"] = {
        source: iso(at) for source, at in sorted(store.successes_get().items())
    }
    return state


def fresh_at_get() -> str | None:
    """When the last successful PBX fetch completed (the heartbeat's ``fresh_at``)."""
    return iso(store.fresh_at_get())


def health_get() -> dict[str, Any]:
    """The overall status (``health_status``), PBX state, last success of each source, requests
    spent in the last window, clients."""
    budget = pbx_budget()
    state = pbx_state_get()
    fresh = store.fresh_at_get()
    blocked_until = budget.blocked_until()
    return {
        "status": health_status(state=state["state"], fresh_at=fresh, blocked=bool(blocked_until)),
        "pbx": state,
        "fresh_at": iso(fresh),
        "requests_last_window": budget.used(),
        "budget_blocked_until": iso(blocked_until),
        "connected_clients": store.clients_count(),
    }


def health_status(*, state: str, fresh_at: float | None, blocked: bool) -> str:
    """The status word: "blocked" (the PBX blocks us), "degraded" (PBX unreachable, or the
    boards' data older than BOARD_STALE_SECONDS) or "up"."""
    if blocked or state == "blocked":
        return "blocked"
    stale = fresh_at is None or time.time() - fresh_at > settings.BOARD_STALE_SECONDS
    if state != "ok" or stale:
        return "degraded"
    return "up"

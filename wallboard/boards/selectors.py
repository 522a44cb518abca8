"""Reads for the board pages: which queues a page shows, their cached snapshots and display
configuration, the extension list for "add agent". Never a PBX request: everything comes from
the live engineer's Redis cache (wallboard.live.selectors) and the database."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from wallboard.boards.models import Board, QueueDisplay

# Data older than this shows "data from HH:MM:SS (N s ago)"; older than STALE greys the board.
DEFAULT_NOTICE_SECONDS = 10
DEFAULT_STALE_SECONDS = 30


@dataclass(frozen=True)
class QueueView:
    queue: int
    name: str
    display_name: str
    snapshot: dict | None
    thresholds: dict
    can_act: bool = False

    def as_json(self) -> dict:
        return {
            "queue": self.queue,
            "name": self.name,
            "display_name": self.display_name,
            "thresholds": self.thresholds,
            "can_act": self.can_act,
        }


@dataclass
class PageData:
    queues: list[QueueView] = field(default_factory=list)
    pbx: dict | None = None

    def snapshots(self) -> dict[str, dict]:
        return {str(q.queue): q.snapshot for q in self.queues if q.snapshot is not None}


def freshness_limits() -> dict[str, int]:
    return {
        "notice": int(getattr(settings, "BOARD_NOTICE_SECONDS", DEFAULT_NOTICE_SECONDS)),
        "stale": int(getattr(settings, "BOARD_STALE_SECONDS", DEFAULT_STALE_SECONDS)),
    }


def known_queues() -> list[dict]:
    """Every queue the poller knows (queue, name, counts...), in queue-number order."""
    from wallboard.live.selectors import queue_summaries

    return sorted(queue_summaries(), key=lambda row: row["queue"])


def pbx_state() -> dict:
    from wallboard.live.selectors import pbx_state_get

    return pbx_state_get()


def fresh_at() -> str | None:
    """When the poller last completed a successful PBX fetch (ISO 8601), or None."""
    from wallboard.live.selectors import fresh_at_get

    return fresh_at_get()


def snapshot(queue: int) -> dict | None:
    from wallboard.live.selectors import snapshot_get

    return snapshot_get(queue=queue)


def page_queues(*, wanted: list[int] | None, allowed: set[int] | None) -> list[int]:
    """The queues a page shows, in order: the wanted ones (all known when None), minus the
    ones the viewer may not see."""
    numbers = list(wanted) if wanted else [row["queue"] for row in known_queues()]
    if allowed is not None:
        numbers = [q for q in numbers if q in allowed]
    return numbers


def display_config(queues: list[int]) -> dict[int, QueueDisplay]:
    rows = {row.queue: row for row in QueueDisplay.objects.filter(queue__in=queues)}
    return {q: rows.get(q) or QueueDisplay(queue=q) for q in queues}


def page_data(*, queues: list[int], actionable: set[int] | None = None) -> PageData:
    """Snapshots + display configuration for these queues (actionable None = all)."""
    from wallboard.live.selectors import snapshots_get

    displays = display_config(queues)
    snapshots = snapshots_get(queues=queues)  # one Redis round trip for the whole page
    views = []
    for number in queues:
        snap = snapshots.get(number)
        display = displays[number]
        name = display.display_name or (snap or {}).get("name") or str(number)
        views.append(
            QueueView(
                queue=number,
                name=name,
                display_name=display.display_name,
                snapshot=snap,
                thresholds=display.thresholds(),
                can_act=actionable is None or number in actionable,
            )
        )
    return PageData(queues=views, pbx=pbx_state())


def board_settings(board: Board | None) -> dict:
    if board is None:
        return {"per_page": 3, "rotation": 15, "sound": False, "name": ""}
    return {
        "per_page": board.queues_per_page,
        "rotation": board.rotation_seconds,
        "sound": board.sound_alert,
        "name": board.name,
    }


def extension_choices() -> list[dict]:
    """Extensions for "add agent": [{extension, name, registered}], from the live cache (the
    poller refreshes the PBX's extension list every POLL_EXTENSIONS_SECONDS)."""
    from wallboard.live import selectors as live

    getter = getattr(live, "extensions_get", None)
    if getter is not None:
        rows = [
            {
                "extension": int(row["extension"]),
                "name": row.get("name") or "",
                "registered": bool(row.get("registered", row.get("is_registered", False))),
            }
            for row in getter() or []
        ]
    else:
        # Until the live part offers a selector: its cached source, as written by the poller
        # ({"fetched", "by_extension": {"201": {"name", "registered"}}}).
        from wallboard.live import store

        cached = store.source_get(store.SOURCE_EXTENSIONS) or {}
        rows = [
            {
                "extension": int(ext),
                "name": row.get("name") or "",
                "registered": bool(row.get("registered")),
            }
            for ext, row in (cached.get("by_extension") or {}).items()
        ]
    return sorted(rows, key=lambda row: row["extension"])


def audit_actions(*, user, filters: dict):
    """MemberAction rows this user may audit (admins: all; team leads: their queues; others:
    none), narrowed by the audit form's cleaned filters; newest first."""
    from datetime import datetime, time, timedelta

    from django.utils import timezone

    from wallboard.boards.access import actionable_queues
    from wallboard.control.models import MemberAction

    rows = MemberAction.objects.all()
    allowed = actionable_queues(user)
    if allowed is not None:
        rows = rows.filter(queue__in=allowed)
    if filters.get("user"):
        rows = rows.filter(username__icontains=filters["user"])
    for name in ("queue", "extension"):
        if filters.get(name) is not None:
            rows = rows.filter(**{name: filters[name]})
    if filters.get("action"):
        rows = rows.filter(action=filters["action"])
    if filters.get("ok") in ("0", "1"):
        rows = rows.filter(ok=filters["ok"] == "1")
    zone = timezone.get_current_timezone()
    if filters.get("date_from"):
        rows = rows.filter(created__gte=datetime.combine(filters["date_from"], time.min, zone))
    if filters.get("date_to"):
        end = datetime.combine(filters["date_to"] + timedelta(days=1), time.min, zone)
        rows = rows.filter(created__lt=end)
    return rows.order_by("-created", "-id")

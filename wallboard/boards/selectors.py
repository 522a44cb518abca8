"""Reads for the board pages: which queues a page shows, their cached snapshots with their display
configuration, the audit trail. Never a PBX request: live data comes from the live cache in
Redis (``wallboard.live.selectors``), configuration from the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from wallboard.boards.models import Board, QueueDisplay
from wallboard.control.access import actionable_queues
from wallboard.control.callbacks import (
    END_ANSWERED,
    END_EXPIRED,
    END_NOT_ANSWERED,
    END_NOT_SENT,
    number_display,
)
from wallboard.control.models import MemberAction
from wallboard.control.selectors import MissedCallerEntry, call_back_results
from wallboard.control.services import action_longest_seconds
from wallboard.live import selectors as live

# How a call back went, for the audit page (None: the call may still be going on).
CALL_BACK_RESULTS = {
    END_ANSWERED: _("answered"),
    END_NOT_ANSWERED: _("not answered"),
    END_EXPIRED: _("no outcome in the call records"),
    END_NOT_SENT: _("not placed"),
    None: _("in progress"),
}


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
        "notice": int(settings.BOARD_NOTICE_SECONDS),
        "stale": int(settings.BOARD_STALE_SECONDS),
    }


def known_queues() -> list[dict[str, Any]]:
    """Every queue the poller knows (queue, name, counts...), in queue-number order."""
    return sorted(live.queue_summaries(), key=lambda row: row["queue"])


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
    displays = display_config(queues)
    snapshots = live.snapshots_get(queues=queues)  # one Redis round trip for the whole page
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
    return PageData(queues=views, pbx=live.pbx_state_get())


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
    return live.extensions_get()


def audit_unknown_after() -> datetime:
    """Actions created before this and still without an outcome will never get one."""
    return timezone.now() - timedelta(seconds=action_longest_seconds())


def audit_actions(*, user, filters: dict) -> QuerySet[MemberAction]:
    """MemberAction rows this user may audit (admins: all; team leads: their queues; others:
    none), narrowed by the audit form's cleaned filters; newest first."""
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
    elif filters.get("ok") == "pending":
        rows = rows.filter(ok__isnull=True)
    zone = timezone.get_current_timezone()
    if filters.get("date_from"):
        rows = rows.filter(created__gte=datetime.combine(filters["date_from"], time.min, zone))
    if filters.get("date_to"):
        end = datetime.combine(filters["date_to"] + timedelta(days=1), time.min, zone)
        rows = rows.filter(created__lt=end)
    return rows.order_by("-created", "-id")


@dataclass(frozen=True)
class CallBackLine:
    """What the audit page says of a call back beside its PBX answer."""

    number: str  # written for reading
    result: str  # how the call went, in words


def audit_call_backs(rows: list[MemberAction]) -> None:
    """Give each call back among the audit page's rows its ``call_back`` line (the number and
    how the call went); other rows get None."""
    results = call_back_results(actions=rows)
    for row in rows:
        is_call_back = row.action == MemberAction.Action.CALL_BACK and row.pk in results
        row.call_back = (
            CallBackLine(
                number=number_display(row.number), result=str(CALL_BACK_RESULTS[results[row.pk]])
            )
            if is_call_back
            else None
        )


def queue_names() -> dict[int, str]:
    """Every known queue's name as the pages show it: its display name, else the PBX's."""
    known = known_queues()
    names = {row["queue"]: row.get("name") or str(row["queue"]) for row in known}
    for number, display in display_config(list(names)).items():
        if display.display_name:
            names[number] = display.display_name
    return names


@dataclass(frozen=True)
class MissedCallerRow:
    """One missed caller as the console's first paint writes it (``missed-callers.js``
    writes the same from the API's answer)."""

    id: int
    when: datetime
    time: str  # HH:MM of the newest call
    number: str  # written for reading
    outcome: str  # how the newest call ended, in words
    queue: int
    queue_name: str
    wait: int | None
    attempts: int
    can_call_back: bool
    claimed: str  # "you", "other" or "" (nobody is calling back)
    state: str  # who is calling back since when, in words; "" for nobody


def missed_caller_rows(
    entries: list[MissedCallerEntry],
    *,
    names: dict[int, str],
    strings: dict[str, str],
    outcomes: dict[str, str],
) -> list[MissedCallerRow]:
    """The console's missed-callers rows for these entries (``strings``: ui_strings'
    ``missed_strings``, ``outcomes``: ``outcome_words``)."""
    rows = []
    for entry in entries:
        progress = entry.call_back
        claimed, state = "", ""
        if progress is not None:
            since = timezone.localtime(progress.since).strftime("%H:%M")
            claimed = "you" if progress.by_you else "other"
            template = strings["by_you"] if progress.by_you else strings["by_other"]
            state = template.format(name=progress.name, ext=progress.extension, time=since)
        rows.append(
            MissedCallerRow(
                id=entry.id,
                when=entry.when,
                time=timezone.localtime(entry.when).strftime("%H:%M"),
                number=entry.number_display,
                outcome=outcomes.get(entry.outcome, entry.outcome),
                queue=entry.queue,
                queue_name=names.get(entry.queue, str(entry.queue)),
                wait=entry.wait,
                attempts=entry.attempts,
                can_call_back=entry.can_call_back,
                claimed=claimed,
                state=state,
            )
        )
    return rows

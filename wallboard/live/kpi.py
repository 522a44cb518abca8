"""Today's KPIs per queue (answered, missed, service level) counted from the PBX's call records.

Pure functions over plain dicts, like ``snapshots``: ``services`` fetches today's CDR
incrementally and keeps one running tally per day in Redis (the ``kpi`` source), never the rows.

The tally (``{p}:source:kpi``)::

    {"day": "2026-11-28", "rows": 812, "last": ["812", "1764321.12", "2026-11-28 10:15:02"],
     "known": [100, 101], "fetched": 1764321302.5,
     "queues": {"100": {"answered": 40, "missed": 3, "waits": {"12": 5, "31": 1}}}}

``rows`` is how many CDR rows of ``day`` have been counted (the next request's offset), ``last``
identifies the last of them so a later request can tell that the day's rows shrank or shifted,
``waits`` is a histogram of answered calls' waits in whole seconds (only calls whose wait is
known), so the service level can be computed for any target when a snapshot is built.

Which rows count (API_NOTES.md, "CDR fields"; the simulator writes the same shapes):
- a queue call is an incoming row whose ``received`` is a known queue number, or whose recording
  file is named ``q-<queue>-...``; an agent's own calls (``type`` outgoing) never are;
- answered = application ``queue`` with status ``answered`` (an agent took it);
- missed = status ``missed`` or ``busy`` (abandoned, cut off at the queue's timeout, or refused
  because the queue was full) or application ``voicemail`` (timed out and left a message): the
  caller reached the queue and no agent answered;
- anything else (an announcement, ``playback``, answering before the queue) is not a queue call.
The wait of an answered call is ``complete_duration - duration`` (ring + time in the queue);
without ``complete_duration`` the wait is unknown and the call counts as answered but not
towards the service level, neither above nor below the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from pbxapi.errors import PBXError
from pbxapi.models import CdrRow
from wallboard.live.snapshots import iso

# The longest target QueueDisplay allows: a longer wait is never "within target", so the
# histogram lumps such waits together and stays bounded.
WAIT_CAP_SECONDS = 3600

_RECORDING_QUEUE = re.compile(r"q-(\d+)-")
_MISSED_STATUSES = frozenset({"missed", "busy"})


@dataclass(frozen=True)
class QueueCall:
    """One CDR row that is a call into a queue."""

    queue: int
    answered: bool
    wait: int | None  # seconds from entering the queue to the answer; None if unknown / missed


# --- the day --------------------------------------------------------------------------------


def pbx_today() -> date:
    """Today in the PBX's time zone: the CDR's ``when`` and its date filters use local time."""
    return datetime.now(ZoneInfo(settings.PBX_TIME_ZONE)).date()


def next_day_start(timestamp: float) -> float:
    """The Unix time of the PBX's next local midnight after ``timestamp``."""
    zone = ZoneInfo(settings.PBX_TIME_ZONE)
    tomorrow = datetime.fromtimestamp(timestamp, zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), zone).timestamp()


def tally_new(day: date, *, known: list[int]) -> dict[str, Any]:
    """An empty tally for ``day``: nothing counted yet, the next request starts at offset 0."""
    return {
        "day": day.isoformat(),
        "rows": 0,
        "last": None,
        "known": sorted(known),
        "fetched": None,
        "queues": {},
    }


def tally_usable(tally: dict[str, Any] | None, *, day: date, known: list[int]) -> bool:
    """True when counting can go on from ``tally``: same day, and no queue has appeared since
    (rows of a queue we did not know were skipped, so a new queue means counting again)."""
    if tally is None or tally.get("day") != day.isoformat():
        return False
    return set(known) <= set(tally.get("known") or [])


# --- reading rows ---------------------------------------------------------------------------


def page_rows(payload: list[Any]) -> list[dict[str, Any]]:
    """The rows of a CDR page: its objects. The API document's examples end lists with a stray
    ``""`` (API_NOTES.md); such elements are not records and take no position in the list."""
    return [element for element in payload if isinstance(element, dict)]


def row_identity(row: dict[str, Any]) -> list[str | None]:
    """What tells one CDR row from another: id, unique_id and when (none of them is rewritten
    later; ``recording_file`` is, when a recording is deleted)."""
    return [_text(row.get(name)) for name in ("id", "unique_id", "when")]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def queue_call(raw: dict[str, Any], *, known: set[int]) -> QueueCall | None:
    """The queue call this raw CDR row records, or None when it is not one.

    Raises ``ValueError`` for a row that cannot be read (the caller skips it with a warning).
    """
    try:
        row = CdrRow.from_payload(raw)
    except PBXError as error:
        raise ValueError(str(error)) from None
    if (row.type or "").lower() == "outgoing":
        return None
    queue = row_queue(row, known=known)
    if queue is None:
        return None
    application = (row.application or "").lower()
    status = (row.status or "").lower()
    if application == "queue" and status == "answered":
        return QueueCall(queue=queue, answered=True, wait=answered_wait(row))
    if status in _MISSED_STATUSES or application == "voicemail":
        return QueueCall(queue=queue, answered=False, wait=None)
    return None


def row_queue(row: CdrRow, *, known: set[int]) -> int | None:
    """The queue a row went through: ``received`` when it is a queue number, else the queue in
    the recording's name (``q-<queue>-<caller>-...``)."""
    received = (row.received or "").strip()
    if received.isdigit() and int(received) in known:
        return int(received)
    match = _RECORDING_QUEUE.match(row.recording_file or "")
    if match and int(match.group(1)) in known:
        return int(match.group(1))
    return None


def answered_wait(row: CdrRow) -> int | None:
    """Ring + queue time of an answered call, or None when the row does not say."""
    raw = row.raw if isinstance(row.raw, dict) else {}
    if row.complete_duration is None or raw.get("duration") in (None, ""):
        return None
    wait = row.complete_duration - row.duration
    # A talk time longer than the whole call is a broken row, not a negative wait.
    return wait if wait >= 0 else None


# --- counting -------------------------------------------------------------------------------


def rows_count(
    tally: dict[str, Any], rows: list[dict[str, Any]], *, known: set[int], fetched: float
) -> tuple[dict[str, Any], set[int], list[str]]:
    """Add new raw CDR rows (``page_rows``) to ``tally``.

    Returns the new tally, the queues whose figures changed and why rows were skipped. Every
    row counts towards ``rows`` (the offset is a position in the PBX's list), readable or not.
    """
    queues = {number: dict(figures) for number, figures in tally["queues"].items()}
    changed: set[int] = set()
    problems: list[str] = []
    for raw in rows:
        try:
            call = queue_call(raw, known=known)
        except ValueError as error:
            problems.append(str(error))
            continue
        if call is None:
            continue
        _call_add(queues, call)
        changed.add(call.queue)
    new = dict(tally, queues=queues, fetched=fetched, rows=tally["rows"] + len(rows))
    if rows:
        new["last"] = row_identity(rows[-1])
    return new, changed, problems


def _call_add(queues: dict[str, dict[str, Any]], call: QueueCall) -> None:
    figures = queues.setdefault(str(call.queue), {"answered": 0, "missed": 0, "waits": {}})
    if not call.answered:
        figures["missed"] += 1
        return
    figures["answered"] += 1
    if call.wait is not None:
        waits = dict(figures["waits"])
        bucket = str(min(call.wait, WAIT_CAP_SECONDS))
        waits[bucket] = waits.get(bucket, 0) + 1
        figures["waits"] = waits


# --- the snapshot's kpi ---------------------------------------------------------------------


def service_level(figures: dict[str, Any], *, target: int) -> float | None:
    """Answered within ``target`` seconds / (answered with a known wait + missed), in percent
    to one decimal; None before the first call that counts."""
    waits = {int(seconds): count for seconds, count in figures.get("waits", {}).items()}
    timed = sum(waits.values())
    offered = timed + int(figures.get("missed", 0))
    if offered == 0:
        return None
    within = sum(count for seconds, count in waits.items() if seconds <= target)
    return round(100.0 * within / offered, 1)


def queue_kpi(
    tally: dict[str, Any] | None, *, queue: int, target: int, today: date
) -> dict[str, Any]:
    """The snapshot's ``kpi`` for one queue (docs/websocket.md, QueueSnapshot).

    Figures are null until today's CDR has been fetched once (also in the first minutes after
    midnight, until the first fetch of the new day).
    """
    kpi: dict[str, Any] = {
        "answered_today": None,
        "missed_today": None,
        "service_level": None,
        "sl_target_seconds": target,
        "kpi_fetched": iso((tally or {}).get("fetched")),
    }
    if tally is None or tally.get("day") != today.isoformat() or tally.get("fetched") is None:
        return kpi
    figures = tally["queues"].get(str(queue)) or {"answered": 0, "missed": 0, "waits": {}}
    kpi.update(
        answered_today=int(figures["answered"]),
        missed_today=int(figures["missed"]),
        service_level=service_level(figures, target=target),
    )
    return kpi

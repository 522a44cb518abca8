"""What one CDR row says about a queue call: its queue, outcome, wait, talk and agent (pure).

docs/kpi.md is the reference for every rule here; in short:

- A *queue call* is a row that is not ``type`` outgoing, whose ``received`` is a known queue
  number or whose recording is named ``q-<queue>-...``, and whose application/status say it
  reached the queue (``outcome_of``). ``playback`` (the caller heard a greeting and hung up),
  ``call`` and ``conference`` rows are not queue calls.
- The *wait* is ``complete_duration - duration`` (ring + time in the queue), unknown when the
  PBX did not send ``complete_duration`` or ``duration``, or when the talk is longer than the call.
- The *talk* of an answered call is ``duration``; its *agent* is ``destination`` (who finally
  took it, also after a transfer).

``record_read`` turns a raw row into the values ``models.CallRecord`` stores, outcome and local
day/slot included, so reports never parse a row again.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pbxapi.errors import PBXError
from pbxapi.models import WHEN_FORMAT, CdrRow
from wallboard.history.intervals import day_and_slot

OUTCOME_ANSWERED = "answered"
OUTCOME_ABANDONED = "abandoned"  # the caller hung up while waiting
OUTCOME_VOICEMAIL = "voicemail"  # waited until the queue's timeout, then left a message
OUTCOME_TIMEOUT = "timeout"  # waited until the queue's timeout and was cut off
OUTCOME_BUSY = "busy"  # refused: the queue was full
OUTCOMES = (OUTCOME_ANSWERED, OUTCOME_ABANDONED, OUTCOME_VOICEMAIL, OUTCOME_TIMEOUT, OUTCOME_BUSY)
UNANSWERED_OUTCOMES = OUTCOMES[1:]

_RECORDING_QUEUE = re.compile(r"q-(\d{1,9})-")
# Applications of a row that went through a queue (``""``: a row without one, judged by status).
_QUEUE_APPLICATIONS = frozenset({"queue", ""})


def outcome_of(*, type: str | None, application: str | None, status: str | None) -> str | None:
    """How a call that reached a queue ended, or None when the row is not such a call."""
    if (type or "").strip().lower() == "outgoing":
        return None
    application = (application or "").strip().lower()
    status = (status or "").strip().lower()
    if application == "voicemail":
        return OUTCOME_VOICEMAIL
    if application == "hangup":  # the document: "after the time limit"
        return OUTCOME_TIMEOUT
    if application not in _QUEUE_APPLICATIONS:
        return None
    return {"answered": OUTCOME_ANSWERED, "missed": OUTCOME_ABANDONED, "busy": OUTCOME_BUSY}.get(
        status
    )


def recording_queue(recording_file: str | None) -> int | None:
    """The queue in a recording's name (``q-<queue>-<caller>-...``), or None."""
    match = _RECORDING_QUEUE.match(recording_file or "")
    return int(match.group(1)) if match else None


def received_queue(received: str | None) -> int | None:
    """``received`` as a number that could be a queue, or None (names, external numbers)."""
    text = (received or "").strip()
    return int(text) if text.isdigit() and len(text) <= 9 else None


def queue_attribute(
    *, received: str | None, recording: int | None, known: Collection[int]
) -> int | None:
    """The queue a queue-shaped row belongs to: ``received`` when it is a known queue, else the
    recording's queue when that one is known, else None (not known yet: see docs/kpi.md)."""
    number = received_queue(received)
    if number is not None and number in known:
        return number
    if recording is not None and recording in known:
        return recording
    return None


def wait_of(row: CdrRow) -> int | None:
    """Ring + queue time (``complete_duration - duration``), or None when the row cannot say."""
    raw = row.raw if isinstance(row.raw, Mapping) else {}
    if row.complete_duration is None or raw.get("duration") in (None, ""):
        return None
    wait = row.complete_duration - row.duration
    # A talk longer than the whole call is a broken row, not a negative wait.
    return wait if wait >= 0 else None


def when_read(text: str, *, unique_id: str | None, zone: ZoneInfo) -> datetime:
    """The instant of a ``when`` written in the PBX's local time without a zone.

    In the hour that repeats when the clocks go back, one wall-clock time is two instants; the
    ``unique_id`` (``<epoch seconds>.<sequence>``, written when the call starts) picks the one it
    is nearer to. Without a usable ``unique_id`` the first of the two is taken.
    """
    text = text.strip()
    try:
        parsed = datetime.strptime(text, WHEN_FORMAT)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"unreadable 'when' {text!r} (expected YYYY-MM-DD HH:MM:SS)") from None
    if parsed.tzinfo is not None:
        return parsed.astimezone(zone)
    first = parsed.replace(tzinfo=zone, fold=0)
    second = parsed.replace(tzinfo=zone, fold=1)
    chosen = first
    if first.utcoffset() != second.utcoffset():
        hint = _epoch(unique_id)
        if hint is not None and abs(hint - second.timestamp()) < abs(hint - first.timestamp()):
            chosen = second
    return datetime.fromtimestamp(chosen.timestamp(), zone)


def _epoch(unique_id: str | None) -> float | None:
    try:
        return float((unique_id or "").split(".")[0])
    except ValueError:
        return None


def page_rows(payload: list[Any]) -> list[dict[str, Any]]:
    """The rows of a CDR page: its objects. The API document's examples end lists with a stray
    ``""`` (API_NOTES.md); such elements are not records and take no position in the list."""
    return [element for element in payload if isinstance(element, dict)]


def row_identity(row: Mapping[str, Any]) -> list[str | None]:
    """What tells one CDR row from another: id, unique_id and when (none of them is rewritten
    later; ``recording_file`` is, when a recording is deleted)."""
    values = (row.get(name) for name in ("id", "unique_id", "when"))
    return [None if value is None else str(value) for value in values]


def record_read(raw: Any, *, known: Collection[int], zone: ZoneInfo) -> dict[str, Any]:
    """The ``CallRecord`` field values for one raw CDR row (the PBX's own ``id`` is the key).

    Raises ``ValueError`` for a row that cannot be read: not an object, no ``id`` or ``when``,
    a number that is not a number. The caller skips it with a warning.
    """
    try:
        row = CdrRow.from_payload(raw)
    except PBXError as error:
        raise ValueError(str(error)) from None
    when = when_read(str(raw["when"]), unique_id=row.unique_id, zone=zone)
    day, slot = day_and_slot(when, zone)
    outcome = outcome_of(type=row.type, application=row.application, status=row.status)
    recording = recording_queue(row.recording_file)
    queue = None
    if outcome is not None:
        queue = queue_attribute(received=row.received, recording=recording, known=known)
    answered = outcome == OUTCOME_ANSWERED
    return {
        "id": row.id,
        "type": row.type or "",
        "when": when,
        "caller": row.caller or "",
        "caller_name": row.caller_name or "",
        "received": row.received or "",
        "received_name": row.received_name or "",
        "destination": row.destination or "",
        "destination_name": row.destination_name or "",
        "duration": row.duration,
        "application": row.application or "",
        "status": row.status or "",
        "recording_file": row.recording_file or "",
        "unique_id": row.unique_id or "",
        "complete_duration": row.complete_duration,
        "raw": dict(raw),
        "queue": queue,
        "recording_queue": recording,
        "outcome": outcome or "",
        "wait": wait_of(row) if outcome is not None else None,
        "talk": row.duration if answered else None,
        "agent": (row.destination or "") if answered else "",
        "day": day,
        "slot": slot,
    }

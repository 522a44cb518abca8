"""The PBX's JSON shapes, with the quirks seen on the live service.

Numbers travel as strings in most places (`"duration": "36"`) but not everywhere
(`"calls_taken": 3`); queue status has no `current_calls_count`; members carry `"dynamic": true`
and extensions `"dnd": false`; empty CDR names are null; `call_forwarding` is a string or false.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/Bratislava")

JSON = dict[str, Any]


def local_time(epoch: float) -> datetime:
    """PBX local time (Europe/Bratislava) for a Unix time."""
    return datetime.fromtimestamp(epoch, TZ)


# Local time is formatted per minute and cached: a history of hundreds of thousands of rows
# formats the same minutes over and over. The zone's UTC offsets are whole minutes (Bratislava:
# +1 h/+2 h), so the seconds of local time are the seconds of the Unix time.


@lru_cache(maxsize=8192)
def _minute(minute: int, layout: str) -> str:
    return local_time(minute * 60).strftime(layout)


@lru_cache(maxsize=8192)
def _quarter_day(quarter: int) -> date:
    return local_time(quarter * 900).date()


def local_date(epoch: float) -> date:
    """The PBX's local date of a Unix time (what the CDR's date filters compare)."""
    # Offsets are whole quarter hours in every zone in use, so a quarter hour has one date.
    return _quarter_day(int(epoch) // 900)


def cdr_when(epoch: float) -> str:
    """CDR `when`: local time without a zone, "YYYY-MM-DD HH:MM:SS"."""
    whole = int(epoch)
    return f"{_minute(whole // 60, '%Y-%m-%d %H:%M:')}{whole % 60:02d}"


def recording_name(queue: int, caller: str, started: float, unique_id: str) -> str:
    """Recording file name as seen live: q-<queue>-<caller>-<YYYYMMDD>-<HHMMSS>-<unique_id>.mp3."""
    whole = int(started)
    stamp = f"{_minute(whole // 60, '%Y%m%d-%H%M')}{whole % 60:02d}"
    return f"q-{queue}-{caller}-{stamp}-{unique_id}.mp3"


def queue_entry(queue: int, name: str) -> JSON:
    return {"queue": str(queue), "nazov": name}


def member_entry(
    extension: int, calls_taken: int, last_ago: int | None, paused: bool, in_use: bool
) -> JSON:
    return {
        "extension": str(extension),
        "calls_taken": calls_taken,  # a JSON number on the live service
        "last_call_taken_ago": last_ago,  # null for a member who never took a call
        "paused": paused,
        "in_use": in_use,
        "dynamic": True,
    }


def waiting_entry(wait_time: int, unique_id: str, caller: str, caller_name: str | None) -> JSON:
    return {
        "wait_time": str(wait_time),
        "unique_id": unique_id,
        "caller": caller,
        "caller_name": caller_name,
    }


def call_leg(
    *,
    caller: str,
    caller_name: str | None,
    callee: str,
    duration: int,
    unique_id: str,
    status: str,
    from_queue_unique_id: str | None = None,
) -> JSON:
    leg: JSON = {
        "caller": caller,
        "caller_name": caller_name or "",  # documented: empty when the caller is not an extension
        "callee": callee,
        "duration": str(duration),
        "unique_id": unique_id,
        "status": status,
    }
    if from_queue_unique_id is not None:
        leg["from_queue_unique_id"] = from_queue_unique_id
    return leg


def extension_entry(
    *,
    extension: int,
    name: str,
    outboundcid: str | None,
    phone_active: bool,
    call_forwarding: str | None,
    registered: bool,
    allowed_changes: list[str],
) -> JSON:
    return {
        "extension": str(extension),
        "name": name,
        "outboundcid": outboundcid,
        "is_viptel_phone_active": phone_active,
        "call_forwarding": call_forwarding if call_forwarding else False,
        "is_registered": registered,
        "allowed_changes": list(allowed_changes),
        "dnd": False,
    }


def body(code: int, detail: str) -> JSON:
    """A result body as in the document's example: {"code": 200, "detail": "Added to queue"}."""
    return {"code": code, "detail": detail}


def call_body(message: str) -> JSON:
    """Call routes answer with a string code and `message` (both as documented)."""
    return {"code": "200", "message": message}

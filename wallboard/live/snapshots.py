"""Building a queue's board snapshot (docs/websocket.md, QueueSnapshot) from what the PBX said.

Pure functions over plain dicts: the poller stores each source's last answer in Redis in the
normalised shapes below and rebuilds a queue's snapshot whenever one of its sources changes.
The PBX does not say since when anything is true, so every ``since`` comes from the previous
snapshot when the thing is still the same (a member still in the same state, the same caller
still waiting, the same call) and from the fetch time when it is new.

Normalised sources (Unix timestamps as floats):
- status: ``{"queue", "fetched", "requested", "members": [{"extension", "calls_taken",
  "last_call_taken_ago", "paused", "in_use"}], "waiting": [{"unique_id", "caller", "caller_name",
  "wait_time"}]}`` (``requested``: when the request began; ``fetched``: when the answer came)
- calls: ``{"fetched", "legs": [{"caller", "caller_name", "callee", "duration", "unique_id",
  "status", "from_queue_unique_id"}]}``
- extensions: ``{"fetched", "by_extension": {"201": {"name", "registered"}}}``
- queue list: ``{"fetched", "queues": [{"queue", "name"}]}``

Today's figures (answered, service level, the staffing hint, each member's calls) are not a PBX
source: the call history computes them and publishes them (``services.kpi_publish``); a
snapshot shows the publication as it is (``queue_today``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.conf import settings

from wallboard.live.shapes import STATES

if TYPE_CHECKING:
    from pbxapi.models import CallStatistics, Extension, Queue, QueueStatus


# Call legs in these states are conversations, not ringing phones. The PBX reports the caller's
# leg into a queue as "answered" as soon as the queue picks up, which is why a leg only counts
# for an agent when the agent is a party to it (API_NOTES.md, "Observed on the live service").
_TALKING_STATUSES = frozenset({"answered", "up", "connected", "talking", "bridged"})
_RINGING_STATUSES = frozenset({"ringing", "ring", "dialing", "calling"})

# Parts of a snapshot that change without anything having happened: they are refreshed in
# Redis on every fetch but never, alone, produce a new version or a push.
_VOLATILE_TOP = ("generated_at", "fetched", "version", "longest_wait")
_VOLATILE_WAITING = ("wait_time",)
_VOLATILE_MEMBER = ("last_call_taken_ago",)
# Figures computed again that came out the same are not news either.
_VOLATILE_KPI = ("computed_at",)

# The snapshot's kpi before today's figures are published (and after the day they were for).
KPI_UNKNOWN: dict[str, Any] = {
    "offered_today": None,
    "answered_today": None,
    "missed_today": None,
    "abandoned_today": None,
    "service_level": None,
    "service_level_met": None,
    "sl_target_seconds": None,
    "sl_goal_percent": None,
    "sl_formula": None,
    "asa": None,
    "aht": None,
    "abandon_rate": None,
    "computed_at": None,
}


def iso(timestamp: float | None) -> str | None:
    """A Unix time as ISO 8601 with the installation's offset, to the second."""
    if timestamp is None:
        return None
    zone = ZoneInfo(settings.TIME_ZONE)
    return datetime.fromtimestamp(timestamp, zone).isoformat(timespec="seconds")


# --- normalising pbxapi models into the stored shapes ---------------------------------------


def status_normalise(
    status: QueueStatus, *, fetched: float, requested: float | None = None
) -> dict[str, Any]:
    return {
        "queue": status.queue,
        "fetched": fetched,
        "requested": fetched if requested is None else requested,
        "members": [
            {
                "extension": member.extension,
                "calls_taken": member.calls_taken,
                "last_call_taken_ago": member.last_call_taken_ago,
                "paused": member.paused,
                "in_use": member.in_use,
            }
            for member in status.members
        ],
        "waiting": [
            {
                "unique_id": call.unique_id,
                "caller": call.caller,
                "caller_name": call.caller_name,
                "wait_time": call.wait_time,
            }
            for call in status.waiting_calls
        ],
    }


def status_with_actions(
    status: dict[str, Any], actions: dict[int, dict[str, Any]] | None
) -> dict[str, Any]:
    """``status`` with the pauses and unpauses the PBX confirmed after it was requested.

    ``actions``: extension -> ``{"paused", "at"}`` (``at``: when the PBX answered). An action's
    answer says what the PBX did, so the boards show it at once rather than after a request
    spent on the queue; the queue's next poll brings the rest. A status requested before the
    answer may not include the action yet (even one that arrives later), so the action is laid
    over it; a status requested after the answer is the PBX's own word and wins.
    """
    requested = status.get("requested", status["fetched"])
    newer = {extension: a for extension, a in (actions or {}).items() if a["at"] > requested}
    if not newer:
        return status
    members = []
    for member in status["members"]:
        action = newer.get(member["extension"])
        if action is not None:
            member = {**member, "paused": action["paused"], "changed_at": action["at"]}
        members.append(member)
    return {**status, "members": members}


def calls_normalise(statistics: CallStatistics, *, fetched: float) -> dict[str, Any]:
    return {
        "fetched": fetched,
        "legs": [
            {
                "caller": leg.caller,
                "caller_name": leg.caller_name,
                "callee": leg.callee,
                "duration": leg.duration,
                "unique_id": leg.unique_id,
                "status": leg.status,
                "from_queue_unique_id": leg.from_queue_unique_id,
            }
            for leg in statistics.calls
        ],
    }


def extensions_normalise(extensions: list[Extension], *, fetched: float) -> dict[str, Any]:
    return {
        "fetched": fetched,
        "by_extension": {
            str(ext.extension): {"name": ext.name, "registered": ext.is_registered}
            for ext in extensions
        },
    }


def queue_list_normalise(queues: list[Queue], *, fetched: float) -> dict[str, Any]:
    return {
        "fetched": fetched,
        "queues": [{"queue": q.queue, "name": q.name} for q in sorted(queues, key=_queue_no)],
    }


def _queue_no(queue: Queue) -> int:
    return queue.queue


# --- member state -------------------------------------------------------------------------


def agent_leg(legs: list[dict[str, Any]], extension: int) -> dict[str, Any] | None:
    """The call leg that has this agent talking, if any.

    An agent leg carries ``from_queue_unique_id`` (a queue call offered to the agent); it means a
    conversation unless the leg says it is still ringing. Without one, the agent must be the
    callee or caller of an answered leg (a direct call).
    """
    number = str(extension)
    fallback = None
    for leg in legs:
        if number not in (leg.get("callee"), leg.get("caller")):
            continue
        status = (leg.get("status") or "").lower()
        if status in _RINGING_STATUSES:
            continue
        if leg.get("from_queue_unique_id"):
            return leg
        if status in _TALKING_STATUSES and fallback is None:
            fallback = leg
    return fallback


def member_state(*, paused: bool, in_use: bool, registered: bool, talking: bool) -> str:
    """docs/websocket.md: on a call beats everything; an unregistered phone is offline; a phone in
    use without a conversation is ringing; paused only when not on a call."""
    if talking:
        return "on_call"
    if not registered:
        return "offline"
    if in_use:
        return "ringing"
    if paused:
        return "paused"
    return "available"


def _call_peer(leg: dict[str, Any], legs: list[dict[str, Any]], extension: int) -> str | None:
    """Who the agent talks to: the outside caller of the queue call, else the other party."""
    origin_id = leg.get("from_queue_unique_id")
    if origin_id:
        for other in legs:
            if other.get("unique_id") == origin_id:
                return other.get("caller")
    number = str(extension)
    return leg.get("caller") if leg.get("callee") == number else leg.get("callee")


# --- today's figures (published by the call history: services.kpi_publish) ---------------
#
# The publication as stored: ``{"computed_at", "valid_until", "queues": {"100": TodayFigures},
# "staffing": {"100": Staffing | None}, "agents": {"100": {"201": AgentToday}}}`` (Unix times;
# ``valid_until`` is the end of the PBX's day the figures are for).


@dataclass(frozen=True)
class QueueToday:
    """One queue's part of today's published figures, as a snapshot shows it."""

    kpi: dict[str, Any]
    staffing: dict[str, Any] | None
    agents: dict[int, dict[str, int]] | None  # extension -> AgentToday; None: not published


QUEUE_TODAY_UNKNOWN = QueueToday(kpi=KPI_UNKNOWN, staffing=None, agents=None)
# A member who took no call in the queue today (once today's figures are published).
_NO_CALLS = {"answered": 0, "talk_seconds": 0}


def queue_today(publication: dict[str, Any] | None, *, queue: int, now: float) -> QueueToday:
    """``queue``'s figures in ``publication`` at ``now``: unknown when nothing was published,
    when the publication's day is over (the next day's first publication brings zeros), or
    when the queue is not in it (a queue that appeared since)."""
    if publication is None or now >= publication["valid_until"]:
        return QUEUE_TODAY_UNKNOWN
    figures = publication["queues"].get(str(queue))
    if figures is None:
        return QUEUE_TODAY_UNKNOWN
    agents = publication["agents"].get(str(queue)) or {}
    return QueueToday(
        kpi={**KPI_UNKNOWN, **figures, "computed_at": iso(publication["computed_at"])},
        staffing=publication["staffing"].get(str(queue)),
        agents={int(extension): today for extension, today in agents.items()},
    )


def queue_today_differs(
    before: dict[str, Any] | None, after: dict[str, Any] | None, *, queue: int, now: float
) -> bool:
    """True when ``queue``'s figures differ between two publications (``computed_at`` alone
    is not a difference)."""
    old = queue_today(before, queue=queue, now=now)
    new = queue_today(after, queue=queue, now=now)
    return _today_comparable(old) != _today_comparable(new)


def _today_comparable(today: QueueToday) -> tuple:
    kpi = {k: v for k, v in today.kpi.items() if k not in _VOLATILE_KPI}
    return kpi, today.staffing, today.agents


# --- the snapshot -------------------------------------------------------------------------


def snapshot_build(
    *,
    queue: int,
    name: str | None,
    status: dict[str, Any],
    calls: dict[str, Any] | None,
    extensions: dict[str, Any] | None,
    queue_list_fetched: float | None,
    previous: dict[str, Any] | None,
    now: float,
    today: QueueToday = QUEUE_TODAY_UNKNOWN,
) -> dict[str, Any]:
    """The QueueSnapshot for ``queue`` without its version (the store assigns versions).

    ``today`` is this queue's part of today's published figures (``queue_today``); all null
    when not given.
    """
    legs = calls["legs"] if calls else []
    by_extension = extensions["by_extension"] if extensions else {}
    before_members = {m["extension"]: m for m in (previous or {}).get("members", [])}
    before_waiting = {w["unique_id"]: w for w in (previous or {}).get("waiting", [])}
    status_time = status["fetched"]
    calls_time = calls["fetched"] if calls else status_time

    members = [
        _member(
            raw,
            legs=legs,
            known=by_extension.get(str(raw["extension"])),
            before=before_members.get(raw["extension"]),
            status_time=status_time,
            calls_time=calls_time,
            today=None if today.agents is None else today.agents.get(raw["extension"], _NO_CALLS),
        )
        for raw in sorted(status["members"], key=lambda m: m["extension"])
    ]
    waiting = [
        _waiting(raw, before=before_waiting.get(raw["unique_id"]), status_time=status_time)
        for raw in status["waiting"]
    ]
    counts = {"waiting": len(waiting), "members": len(members)}
    counts.update({state: sum(1 for m in members if m["state"] == state) for state in STATES})
    longest = max(waiting, key=lambda w: w["wait_time"], default=None)
    return {
        "queue": queue,
        "name": name,
        "version": None,
        "generated_at": iso(now),
        "fetched": {
            "queue_status": iso(status_time),
            "calls": iso(calls["fetched"]) if calls else None,
            "extensions": iso(extensions["fetched"]) if extensions else None,
            "queues": iso(queue_list_fetched),
        },
        "counts": counts,
        "longest_wait": longest["wait_time"] if longest else 0,
        "longest_wait_since": min(w["since"] for w in waiting) if waiting else None,
        "waiting": waiting,
        "members": members,
        "kpi": dict(today.kpi),
        "staffing": today.staffing,
    }


def _member(
    raw: dict[str, Any],
    *,
    legs: list[dict[str, Any]],
    known: dict[str, Any] | None,
    before: dict[str, Any] | None,
    status_time: float,
    calls_time: float,
    today: dict[str, int] | None,
) -> dict[str, Any]:
    extension = raw["extension"]
    leg = agent_leg(legs, extension)
    # Until the extension list has been fetched once, nothing says the phone is unregistered.
    registered = bool(known["registered"]) if known else True
    state = member_state(
        paused=raw["paused"], in_use=raw["in_use"], registered=registered, talking=leg is not None
    )
    if before and before.get("state") == state:
        state_since = before["state_since"]
    else:
        # First seen in this state by whichever of the two sources was fetched last, or when the
        # PBX confirmed the action that changed it (status_with_actions).
        state_since = iso(max(status_time, calls_time, raw.get("changed_at") or 0.0))
    call = None
    if leg is not None:
        before_call = (before or {}).get("call") or {}
        if before_call.get("unique_id") == leg["unique_id"]:
            since = before_call["since"]
        else:
            since = iso(calls_time - (leg.get("duration") or 0))
        call = {
            "peer": _call_peer(leg, legs, extension),
            "since": since,
            "unique_id": leg["unique_id"],
        }
    return {
        "extension": extension,
        "name": known.get("name") if known else None,
        "state": state,
        "state_since": state_since,
        "paused": raw["paused"],
        "in_use": raw["in_use"],
        "registered": registered,
        "calls_taken": raw["calls_taken"],
        "last_call_taken_ago": raw["last_call_taken_ago"],
        "call": call,
        "answered": None if today is None else today["answered"],
        "talk_seconds": None if today is None else today["talk_seconds"],
    }


def _waiting(
    raw: dict[str, Any], *, before: dict[str, Any] | None, status_time: float
) -> dict[str, Any]:
    # `since` is pinned at first sight: recomputing it from a wait_time rounded to the second
    # would make it wobble between polls and look like a change.
    since = before["since"] if before else iso(status_time - raw["wait_time"])
    return {
        "unique_id": raw["unique_id"],
        "caller": raw["caller"],
        "caller_name": raw["caller_name"],
        "wait_time": raw["wait_time"],
        "since": since,
    }


def snapshot_differs(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """True when something a viewer cares about changed (see ``_VOLATILE_*``)."""
    if old is None:
        return True
    return _comparable(old) != _comparable(new)


def _comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    result = {k: v for k, v in snapshot.items() if k not in _VOLATILE_TOP}
    result["waiting"] = [
        {k: v for k, v in w.items() if k not in _VOLATILE_WAITING} for w in snapshot["waiting"]
    ]
    result["members"] = [
        {k: v for k, v in m.items() if k not in _VOLATILE_MEMBER} for m in snapshot["members"]
    ]
    result["kpi"] = {k: v for k, v in (snapshot.get("kpi") or {}).items() if k not in _VOLATILE_KPI}
    return result


def snapshot_summary(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The short form the queue list shows (selectors.queue_summaries)."""
    return {
        "queue": snapshot["queue"],
        "name": snapshot["name"],
        "version": snapshot["version"],
        "counts": snapshot["counts"],
        "longest_wait": snapshot["longest_wait"],
        "longest_wait_since": snapshot["longest_wait_since"],
        "generated_at": snapshot["generated_at"],
        "fetched": snapshot["fetched"],
    }

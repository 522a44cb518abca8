"""Filters for the server-rendered first paint of the boards (the JS renders the same way)."""

from __future__ import annotations

import math
import re

from django import template

from wallboard.boards.ui_strings import js_strings, state_words
from wallboard.control import access
from wallboard.live.shapes import TAKING_CALLS

register = template.Library()


@register.filter
def state_word(state: str) -> str:
    return state_words().get(state, state)


@register.filter
def duration(seconds: object) -> str:
    """45 -> "0:45", 3725 -> "1:02:05"; anything else -> "—"."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return "—"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def mean_duration(seconds: object) -> str:
    """A mean in seconds (ASA: one decimal) to the nearest second: 7.6 -> "0:08"."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return "—"
    return duration(int(seconds + 0.5))


@register.filter
def dash(value: object) -> object:
    """None (a figure not published yet) or a missing one -> "—", anything else unchanged."""
    return "—" if value is None or value == "" else value


@register.filter
def percent(value: object) -> str:
    """A percentage (0..100, one decimal, as the figures give it) -> "87 %"; None -> "—"."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    # Halves up, as the page's JS (Math.round) does: Python's round() would make 86.5 "86 %".
    return f"{math.floor(value + 0.5)} %"


@register.filter
def taking_calls(counts: object) -> object:
    """Members who take calls now (available, ringing or on a call): what the staffing hint's
    "needed" compares with. "—" before the queue's first snapshot."""
    if not isinstance(counts, dict):
        return "—"
    return sum(int(counts.get(state) or 0) for state in TAKING_CALLS)


@register.filter
def needed(staffing: object) -> str:
    """The staffing hint's agents: "14", "> 200" when even that many would not do, "—" without
    a hint (too few calls, none answered today, not published yet)."""
    if not isinstance(staffing, dict):
        return "—"
    if staffing.get("capped"):
        return f"> {staffing.get('max_agents')}"
    value = staffing.get("needed")
    return "—" if value is None else str(value)


@register.filter
def staffing_basis(staffing: object) -> str:
    """How the staffing hint was made, in words, or "" before it is published (a tooltip;
    ``staffingBasis`` in static/js/lib/format.js writes the same)."""
    if not isinstance(staffing, dict):
        return ""
    words = js_strings()["staffing"]
    values = {
        "calls": staffing.get("calls"),
        "minutes": round((staffing.get("window_seconds") or 0) / 60),
        "min": staffing.get("min_calls"),
        "aht": mean_duration(staffing.get("aht")),
        "percent": staffing.get("target_percent"),
        "target": staffing.get("target_seconds"),
    }
    if staffing.get("needed") is not None or staffing.get("capped"):
        template = words["basis"]
    elif (staffing.get("calls") or 0) < (staffing.get("min_calls") or 0):
        template = words["few_calls"]
    else:
        template = words["no_aht"]
    return _fill(template, values)


def _fill(template: str, values: dict[str, object]) -> str:
    """``fill`` of static/js/lib/format.js: {name} replaced, unknown names left as they are."""
    return re.sub(
        r"\{(\w+)\}",
        lambda match: str(values[match[1]]) if match[1] in values else match[0],
        template,
    )


@register.filter
def met(figures: object) -> str:
    """The service level against its goal, for a data attribute: "yes", "no" or ""."""
    value = figures.get("service_level_met") if isinstance(figures, dict) else None
    return "" if value is None else ("yes" if value else "no")


@register.simple_tag
def agent_states() -> list[tuple[str, str]]:
    """(state, word) in the order the boards show the counts."""
    return list(state_words().items())


@register.simple_tag
def can_audit(user) -> bool:
    """Team leads and admins see the audit page; viewers do not get a link to a 403."""
    return access.can_audit(user)


@register.simple_tag
def can_report(user) -> bool:
    """Team leads and admins read reports; viewers do not get a link to a 403."""
    return access.can_report(user)

"""Filters for the server-rendered first paint of the boards (the JS renders the same way)."""

from __future__ import annotations

from django import template

from wallboard.boards.ui_strings import state_words
from wallboard.control import access

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
def dash(value: object) -> object:
    """None -> "—" (a KPI the PBX has not given us yet), anything else unchanged."""
    return "—" if value is None else value


@register.filter
def percent(value: object) -> str:
    """Service level in percent (the live KPI: 0..100, one decimal) -> "87 %"; None -> "—"."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{round(value)} %"


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


@register.filter
def mean_duration(seconds: object) -> str:
    """A mean time (ASA, AHT: one decimal) rounded to the second, as ``duration`` writes it."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "—"
    return duration(round(seconds))

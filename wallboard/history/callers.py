"""Missed callers: outside numbers whose queue calls today went unanswered and who have not
been served since (pure; docs/kpi.md, "Missed callers").

A caller stops being missed when a later call of theirs is answered in any queue, or when an
agent calls the number back and the call is answered (an outgoing row). Numbers are compared on
their last ``NUMBER_MATCH_DIGITS`` digits, because the PBX shows an incoming number
internationally (``00421903...``) and an agent dials it nationally (``0903...``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wallboard.history.records import OUTCOME_ANSWERED, UNANSWERED_OUTCOMES

# Extensions are short; a number with fewer digits than this is someone inside the company.
EXTERNAL_MIN_DIGITS = 6
# A Slovak subscriber number without its prefixes (0 or 00421) has nine digits.
NUMBER_MATCH_DIGITS = 9

_NOT_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class MissedCaller:
    """One outside number still waiting for us: its newest unanswered call and how many."""

    caller: str  # as the PBX wrote it on the newest attempt
    queue: int  # of the newest attempt
    when: datetime  # the newest attempt
    wait: int | None  # how long they waited on the newest attempt
    outcome: str  # how the newest attempt ended
    attempts: int  # unanswered calls since they were last served (today)
    first_when: datetime  # the first of those
    id: int  # the newest attempt's call record (the PBX's id): names this entry in the list


def number_key(number: str | None) -> str | None:
    """What two spellings of one outside number share, or None for an internal number."""
    digits = _NOT_DIGITS.sub("", number or "")
    if len(digits) < EXTERNAL_MIN_DIGITS:
        return None
    return digits[-NUMBER_MATCH_DIGITS:]


def missed_callers_find(
    rows: Iterable[Sequence[Any]], *, queues: Collection[int] | None = None
) -> list[MissedCaller]:
    """The missed callers among the day's rows, newest attempt first.

    ``rows`` are (when, type, status, caller, destination, queue, outcome, wait, id) tuples in
    time order: the day's queue calls and outgoing rows. ``queues`` limits which queues' attempts
    are listed; an answer in any queue still serves the caller.
    """
    pending: dict[str, list[Sequence[Any]]] = {}
    for row in rows:
        _when, type_, status, caller, destination, queue, outcome, _wait, _id = row
        if (type_ or "").lower() == "outgoing":
            if (status or "").lower() == "answered":
                key = number_key(destination)
                if key is not None:
                    pending.pop(key, None)
            continue
        key = number_key(caller)
        if key is None or queue is None:
            continue
        if outcome == OUTCOME_ANSWERED:
            pending.pop(key, None)
        elif outcome in UNANSWERED_OUTCOMES:
            pending.setdefault(key, []).append(row)
    missed = []
    for attempts in pending.values():
        listed = [row for row in attempts if queues is None or row[5] in queues]
        if not listed:
            continue
        newest = listed[-1]
        missed.append(
            MissedCaller(
                caller=newest[3],
                queue=newest[5],
                when=newest[0],
                wait=newest[7],
                outcome=newest[6],
                attempts=len(listed),
                first_when=listed[0][0],
                id=newest[8],
            )
        )
    missed.sort(key=lambda caller: caller.when.timestamp(), reverse=True)
    return missed

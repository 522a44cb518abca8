"""Realistic call history for report tests: the PBX simulator's own CDR (its history sweep over
past days, with the live centre's rules: surges, breaks, transfers, short abandons, retries),
stored through the product's ingest service, as `cdr_import` stores it."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from pbxapi.simulator import SimulatorConfig
from pbxapi.simulator.centre import CallCentre
from wallboard.history.services import call_records_upsert

ZONE = ZoneInfo("Europe/Bratislava")
# Friday 27 November 2026, 14:30 in Bratislava: eight days of history are 20-27 November.
START = datetime(2026, 11, 27, 14, 30, tzinfo=ZONE)
PAGE = 3000  # the PBX's CDR page


def centre_rows(centre: CallCentre) -> list[dict[str, Any]]:
    """Every CDR row the centre holds, paged as the PBX pages them."""
    rows: list[dict[str, Any]] = []
    while True:
        page = centre.cdr_rows(limit=PAGE, offset=len(rows))
        rows.extend(page)
        if len(page) < PAGE:
            return rows


@functools.cache
def simulated_history(
    *,
    queues: int = 3,
    agents: int = 12,
    days: int = 8,
    call_rate: float = 0.3,
    seed: int = 1,
    start: float = START.timestamp(),
) -> tuple[tuple[dict[str, Any], ...], tuple[int, ...]]:
    """(CDR rows, queue numbers) of a simulated centre's ``days`` days up to ``start`` (the
    last day is ``start``'s, up to that time). Deterministic, so cached across tests."""
    centre = CallCentre(
        SimulatorConfig(
            queues=queues,
            agents=agents,
            history_days=days,
            call_rate=call_rate,
            seed=seed,
            start_time=start,
            autopilot=False,
        )
    )
    return tuple(centre_rows(centre)), tuple(centre.queue_numbers())


def history_store(rows: Iterable[dict[str, Any]], *, known: Iterable[int]) -> int:
    """Store CDR rows through the ingest service, a PBX page at a time; returns how many."""
    known = set(known)
    rows = list(rows)
    stored = 0
    for first in range(0, len(rows), PAGE):
        page = rows[first : first + PAGE]
        stored += call_records_upsert(rows=page, known=known, zone=ZONE, stored_at=timezone.now())[
            0
        ]
    return stored

"""Fixtures for the history tests: rows shaped as the PBX sends them, the live cache's queue
list (where attribution learns which numbers are queues), and a stand-in PBX at the HTTP seam."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from wallboard.live import store
from wallboard.live.store import SOURCE_QUEUES

from .cdr_pbx import CdrPBX

ZONE = ZoneInfo("Europe/Bratislava")


def local(text: str, *, fold: int = 0) -> datetime:
    """An aware Bratislava time from "YYYY-MM-DD HH:MM[:SS]" (``fold=1``: the repeated hour's
    second pass)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZONE, fold=fold)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def cdr_row(number: int, when: str, **fields: Any) -> dict[str, Any]:
    """A CDR row as the PBX sends it (numbers as strings, empty names null): by default an
    answered call of queue 100, taken by agent 201 after a 12 s wait and 60 s of talk."""
    row: dict[str, Any] = {
        "id": str(number),
        "type": "incoming",
        "when": when,
        "caller": "00421903123456",
        "caller_name": None,
        "received": "100",
        "received_name": None,
        "destination": "201",
        "destination_name": "Jana Novakova",
        "duration": "60",
        "application": "queue",
        "status": "answered",
        "recording_file": "",
        "unique_id": f"{int(local(when).timestamp())}.{number}",
        "complete_duration": "72",
    }
    row.update({name: value for name, value in fields.items()})
    return row


@pytest.fixture
def queues_known() -> Callable[[list[int]], None]:
    """Put a queue list in the live cache, as the live poller keeps it."""

    def known(numbers: list[int]) -> None:
        queues = [{"queue": number, "name": f"Queue {number}"} for number in sorted(numbers)]
        store.source_set(SOURCE_QUEUES, {"fetched": time.time(), "queues": queues})

    return known


@pytest.fixture
def cdr_pbx(live_settings) -> Iterator[CdrPBX]:
    """The stand-in PBX, with the product's client (and its shared budget) pointed at it."""
    pbx = CdrPBX()
    live_settings.PBX_BASE_URL = pbx.url
    live_settings.PBX_USER = "history-test"
    live_settings.PBX_SECRET = "history-secret"
    yield pbx
    pbx.stop()

"""The client's side of the budget's hold rule: it asks for its worst case, sends within a
second of the grant or not at all, ends every exchange by its deadline whatever the PBX does,
and releases the slot when the answer has been read or the request failed.

The budget runs on a fake clock that never moves by itself: a slot released at that moment
ends exactly one window later, an unreleased one only after its hold, so one step of the clock
tells them apart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pbx_testing import GENEROUS_LIMIT, PASSWORD, USER, CannedPBX

from pbxapi.budget import Grant, LocalBudget
from pbxapi.client import PBXClient
from pbxapi.errors import (
    Blocked,
    BudgetExhausted,
    GrantExpired,
    InvalidArgument,
    NotFound,
    PBXTimeout,
    Unreachable,
)
from pbxapi.models import CdrRow

WINDOW = 1.0
CONNECT, READ = 0.3, 0.4


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Watched:
    """The real budget, noting what the client asks and gives back."""

    def __init__(self, budget: LocalBudget, *, descheduled: float = 0.0) -> None:
        self.budget = budget
        self.descheduled = descheduled
        self.grants: list[Grant] = []
        self.released: list[Grant] = []

    def acquire(self, **ask: Any) -> Grant:
        grant = self.budget.acquire(**ask)
        # A process descheduled right after the grant comes back this much later.
        grant = grant._replace(monotonic=grant.monotonic - self.descheduled)
        self.grants.append(grant)
        return grant

    def release(self, grant: Grant) -> None:
        self.released.append(grant)
        self.budget.release(grant)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.budget, name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def budget(clock: FakeClock) -> LocalBudget:
    """One request per window: whether the next one is granted says whether the last was
    released (it counts one window after release) or not (hold + window after its grant)."""
    return LocalBudget(requests=1, window=WINDOW, reserve=0, pbx_limit=GENEROUS_LIMIT, clock=clock)


@pytest.fixture
def watched(budget: LocalBudget) -> Watched:
    return Watched(budget)


@pytest.fixture
def pbx(canned: CannedPBX, watched: Watched) -> Iterator[PBXClient]:
    with PBXClient(
        canned.url,
        USER,
        PASSWORD,
        budget=watched,  # type: ignore[arg-type]
        connect_timeout=CONNECT,
        read_timeout=READ,
        max_wait=0,
    ) as client:
        yield client


def _released_just_now(budget: LocalBudget, clock: FakeClock) -> bool:
    """True if the only slot ends one window from now: released at this (fake) moment."""
    clock.now += WINDOW
    try:
        budget.acquire(max_wait=0)
    except BudgetExhausted:
        pass  # still held: released now, it ends exactly now (strict), or not released at all
    else:
        return False
    clock.now += 1e-6
    try:
        budget.acquire(max_wait=0)
    except BudgetExhausted:
        return False
    return True


def test_it_asks_for_its_worst_case_and_releases_when_the_answer_is_read(
    canned, pbx, watched, budget, clock
):
    canned.answer("/api/queue/", [{"queue": "100", "nazov": "Predaj"}])
    assert [q.queue for q in pbx.queues()] == [100]
    (grant,) = watched.grants
    assert grant.hold == pytest.approx(1.0 + CONNECT + READ)  # send deadline + connect + read
    assert watched.released == [grant]
    assert _released_just_now(budget, clock)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"body": {"detail": "none"}, "status": 404}, NotFound),
        ({"body": [], "delay": 1.0}, PBXTimeout),
    ],
    ids=["404", "timeout"],
)
def test_it_releases_the_slot_when_the_request_failed(
    canned, pbx, watched, budget, clock, answer, error
):
    canned.answer("/api/queue/", **answer)
    with pytest.raises(error):
        pbx.queues()
    assert len(watched.grants) == 1
    assert watched.released == watched.grants
    assert _released_just_now(budget, clock)


def test_a_403_blocks_and_still_releases_the_slot(canned, pbx, watched, budget):
    canned.answer("/api/queue/", b"<html>Forbidden</html>", status=403, content_type="text/html")
    with pytest.raises(Blocked):
        pbx.queues()
    assert budget.blocked_until() is not None
    assert len(watched.grants) == 1
    assert watched.released == watched.grants


def test_it_releases_the_slot_when_the_pbx_cannot_be_reached(canned, pbx, budget, clock):
    canned.stop()
    with pytest.raises(Unreachable):
        pbx.queues()
    assert _released_just_now(budget, clock)


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_an_answer_sent_a_byte_at_a_time_ends_at_the_deadline(
    canned, pbx, budget, clock, headers_too
):
    """Each byte comes well within the read timeout, so a per-read timeout would wait for all
    of them (10 s); the exchange ends by connect + read timeout after it was sent."""
    rows = [{"queue": str(100 + i), "nazov": "Predaj"} for i in range(10)]
    canned.answer("/api/queue/", rows, trickle=0.05, trickle_headers=headers_too)
    started = time.monotonic()
    with pytest.raises(PBXTimeout, match="did not finish answering"):
        pbx.queues()
    assert time.monotonic() - started < CONNECT + READ + 0.5
    assert _released_just_now(budget, clock)


def test_a_download_sent_a_byte_at_a_time_ends_at_the_deadline(canned, pbx, tmp_path):
    canned.answer("/api/cdr/download/9", bytes(200), content_type="audio/mpeg", trickle=0.05)
    started = time.monotonic()
    with pytest.raises(PBXTimeout):
        pbx.download_recording(9, dest=tmp_path / "call.mp3")
    assert time.monotonic() - started < CONNECT + READ + 0.5
    assert list(tmp_path.iterdir()) == []


def test_a_connection_ended_by_the_deadline_is_not_reused(canned, pbx, budget, clock):
    canned.answer("/api/queue/", [{"queue": "1"}] * 20, trickle=0.05)
    with pytest.raises(PBXTimeout):
        pbx.queues()
    clock.now += 10.0
    canned.answer("/api/queue/", [{"queue": "100"}])
    assert [q.queue for q in pbx.queues()] == [100]


def test_a_process_late_to_send_sends_nothing(canned, budget, clock):
    late = Watched(budget, descheduled=1.5)
    canned.answer("/api/queue/", [])
    client = PBXClient(canned.url, USER, PASSWORD, budget=late, max_wait=0)  # type: ignore[arg-type]
    with client, pytest.raises(GrantExpired, match=r"1\.50 s after its budget grant") as raised:
        client.queues()
    assert isinstance(raised.value, BudgetExhausted)  # nothing sent, like a refusal
    assert canned.seen == []
    assert late.released == late.grants
    assert _released_just_now(budget, clock)


def test_a_client_whose_exchange_outlasts_the_budgets_longest_hold_is_refused(canned):
    budget = LocalBudget(max_hold=5.0)
    with pytest.raises(InvalidArgument, match="longer than the budget's longest hold"):
        PBXClient(canned.url, USER, PASSWORD, budget=budget, connect_timeout=3, read_timeout=10)
    PBXClient(canned.url, USER, PASSWORD, budget=budget, connect_timeout=1, read_timeout=3)


def test_the_cdr_times_are_in_the_time_zone_the_client_is_given(canned):
    canned.answer("/api/cdr/", [{"id": 1, "when": "2026-01-13 15:27:35"}])
    budget = LocalBudget()
    with PBXClient(canned.url, USER, PASSWORD, budget=budget, time_zone="UTC") as client:
        (row,) = client.cdr()
    assert row.when == datetime(2026, 1, 13, 15, 27, 35, tzinfo=ZoneInfo("UTC"))
    with pytest.raises(InvalidArgument, match="time zone"):
        PBXClient(canned.url, USER, PASSWORD, budget=budget, time_zone="Mars/Olympus")
    # The models take the zone they are handed; without one `when` stays as the PBX sent it.
    naive = CdrRow.from_payload({"id": 1, "when": "2026-01-13 15:27:35"})
    assert naive.when == datetime(2026, 1, 13, 15, 27, 35) and naive.when.tzinfo is None

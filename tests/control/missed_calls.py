"""Missed callers made the way they happen: a caller gives up in the simulator's queue, and the
call history reads the PBX's records (``cdr_poll_run``) as its beat would. The live cache knows
the queues and extensions as the poller keeps them.
(A uniquely named module, so test files can import it whatever other conftest.py files exist.)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from wallboard.history import selectors as history
from wallboard.history.services import cdr_poll_run
from wallboard.live.services import source_fetch
from wallboard.live.store import SOURCE_EXTENSIONS, SOURCE_QUEUES

NUMBER = "00421905123456"
SHOWN = "00421 905 123 456"
# The simulator's reception desk: registered, in no queue, free to ring.
DESK = 200


def live_cache_filled() -> None:
    """The queue list and the extensions, fetched as the live poller does."""
    source_fetch(SOURCE_QUEUES)
    source_fetch(SOURCE_EXTENSIONS)


def history_read(sim) -> None:
    """The call history's poll, at the simulator's clock; a run the budget held off is tried
    again (it never waits for a slot by itself)."""
    for _attempt in range(40):
        report = cdr_poll_run(now=datetime.fromtimestamp(sim.centre.now(), UTC))
        if not report.deferred:
            return
        time.sleep(0.1)
    raise AssertionError("the call history could not read the PBX")


def gave_up(sim, queue: int, number: str = NUMBER, *, waited: int = 40) -> int:
    """A caller of ``number`` waits ``waited`` seconds in ``queue`` and hangs up; once the
    history has read it, returns the missed caller's entry id."""
    # The caller entered the queue now and hangs up ``waited`` seconds later: after anything
    # that happened before.
    sim.centre.advance(waited, live=False)
    sim.centre.abandon_caller(sim.centre.add_waiting_caller(queue, caller=number, wait_time=waited))
    history_read(sim)
    return entry_of(number)


def answered_in_queue(sim, queue: int, number: str = NUMBER) -> None:
    """The caller calls again and an agent of ``queue`` takes the call."""
    agent = min(sim.centre.members(queue))
    sim.centre.set_registered(agent, True)
    sim.centre.start_call(queue, agent, caller=number)
    sim.centre.advance(30, live=False)
    sim.centre.end_call(agent)
    history_read(sim)


def entry_of(number: str) -> int:
    return next(entry.id for entry in history.missed_callers() if entry.caller == number)


def missed_numbers() -> list[str]:
    return [entry.caller for entry in history.missed_callers()]


def placed(sim) -> list[tuple[str, str]]:
    """The call/create requests the PBX got: (extension, number)."""
    return [(entry["caller"], entry["destination"]) for entry in sim.centre.call_create_log()]

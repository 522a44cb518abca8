"""The request budget: never more than N slots held, so never more than N arrivals at the PBX
in any window whatever the delays between grant, arrival and response; the three lanes; the
shared block after a 403; the cold start after Redis loses its memory.

RedisBudget is exercised by several real processes sharing one Redis key; LocalBudget by
threads and, decision by decision, on a fake clock. Grant times come back from ``acquire`` on
the budget's own clock (Redis TIME for RedisBudget), and simulated arrivals are read from the
same clock, so the window checks do not depend on process scheduling.
"""

from __future__ import annotations

import functools
import heapq
import multiprocessing
import queue as queue_module
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry

from pbxapi.budget import (
    PRIORITIES,
    Budget,
    FileBlockStore,
    Grant,
    LocalBudget,
    RedisBudget,
)
from pbxapi.errors import Blocked, BudgetExhausted, BudgetUnavailable, InvalidArgument

N, W, RESERVE = 5, 0.4, 2
MICRO = 1_000_000
# Short holds keep the tests' cold starts short (W + MAX_HOLD).
MAX_HOLD = 0.3
# The PBX these budgets stand before: at most 20 requests, any window the tests use.
TEST_PBX = (20, 0.1)

# priority, pause before, max_wait, grant -> arrival, arrival -> end of response, released
Op = tuple[str, float, float, float, float, bool]


def _redis_budget(
    key: str,
    requests: int,
    window: float,
    reserve: int,
    *,
    max_hold: float = MAX_HOLD,
    block_store: FileBlockStore | None = None,
) -> RedisBudget:
    connection = redis.Redis(host="127.0.0.1", port=6379)
    return RedisBudget(
        connection,
        key=key,
        requests=requests,
        window=window,
        reserve=reserve,
        block_seconds=60,
        max_hold=max_hold,
        pbx_limit=TEST_PBX,
        block_store=block_store,
    )


def _local_budget(requests: int, window: float, reserve: int, **options: Any) -> LocalBudget:
    return LocalBudget(
        requests=requests,
        window=window,
        reserve=reserve,
        block_seconds=60,
        max_hold=options.pop("max_hold", MAX_HOLD),
        pbx_limit=TEST_PBX,
        **options,
    )


def _budget(kind: str, key: str, requests: int, window: float, reserve: int) -> Budget:
    """The shared budget (``kind`` "redis") or the in-process one ("local"), same limits."""
    if kind == "redis":
        return _redis_budget(key, requests, window, reserve)
    return _local_budget(requests, window, reserve)


def _now(budget: Budget) -> float:
    """Now on the budget's clock (the tests' LocalBudgets keep time.monotonic)."""
    if isinstance(budget, RedisBudget):
        seconds, micros = budget.redis.time()
        return seconds + micros / MICRO
    return time.monotonic()


def _lose_memory(connection: redis.Redis, key: str) -> int:
    """Delete every key of the budget at once, as a flush would; returns when (Redis µs)."""
    found = list(connection.scan_iter(match=f"{key}*"))
    seconds, micros = connection.eval(
        "redis.call('DEL', unpack(KEYS)) return redis.call('TIME')", len(found), *found
    )
    return int(seconds) * MICRO + int(micros)


# --- workers (run in a child process or a thread) ---


def _run_ops(make_budget: Callable[[], Budget], ops: list[Op]) -> list[tuple[int, int, str]]:
    """Ask for each op's slot; a granted request "arrives" at the PBX some time after its grant
    and its response ends later still; then it is released (or its holder "dies")."""
    budget = make_budget()
    done: list[tuple[int, int, str]] = []
    for priority, pause, max_wait, delay, response, released in ops:
        time.sleep(pause)
        try:
            grant = budget.acquire(priority=priority, max_wait=max_wait, hold=MAX_HOLD)
        except BudgetExhausted:
            continue
        time.sleep(delay)
        arrived = _now(budget)
        time.sleep(response)
        if released:
            budget.release(grant)
        done.append((round(grant.at * MICRO), round(arrived * MICRO), priority))
    return done


def _request(budget: Budget, priority: str, max_wait: float) -> Grant:
    """A request whose response comes back at once: the grant, released."""
    grant = budget.acquire(priority=priority, max_wait=max_wait, hold=0.0)
    budget.release(grant)
    return grant


def _poll_until(make_budget: Callable[[], Budget], seconds: float) -> dict[str, Any]:
    """Poll as fast as the budget allows; on Blocked stay silent until the block ends."""
    budget = make_budget()
    grants: list[int] = []
    blocked: list[float] = []
    refused: list[str] = []
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        try:
            grants.append(round(_request(budget, "poll", 0.3).at * MICRO))
        except BudgetExhausted as exc:
            refused.append(str(exc))
            continue
        except Blocked as exc:
            blocked.append(exc.until)
            time.sleep(max(0.0, min(exc.seconds_left, stop_at - time.monotonic())) + 0.01)
    return {"grants": grants, "blocked": blocked, "refused": refused}


def _act_every(make_budget: Callable[[], Budget], every: float, count: int) -> dict[str, Any]:
    """An agent action now and then, never willing to wait."""
    budget = make_budget()
    granted, refused = [], 0
    for _ in range(count):
        time.sleep(every)
        try:
            granted.append(round(_request(budget, "action", 0).at * MICRO))
        except BudgetExhausted:
            refused += 1
    return {"grants": granted, "refused": refused}


def _collect(job: Callable[[], Any], results: Any, index: int) -> None:
    results.put((index, job()))


def run_in_processes(jobs: list[Callable[[], Any]]) -> list[Any]:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [
        context.Process(target=_collect, args=(job, results, i)) for i, job in enumerate(jobs)
    ]
    for worker in workers:
        worker.start()
    try:
        collected = dict(results.get(timeout=60) for _ in workers)
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    return [collected[i] for i in range(len(jobs))]


def run_in_threads(jobs: list[Callable[[], Any]]) -> list[Any]:
    results: queue_module.Queue = queue_module.Queue()
    threads = [
        threading.Thread(target=_collect, args=(job, results, i)) for i, job in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    collected = dict(results.get_nowait() for _ in threads)
    return [collected[i] for i in range(len(jobs))]


# --- the checks ---


def _most_in_a_window(times: list[int], window: int) -> int:
    """The most of ``times`` (µs) inside any closed window of ``window`` µs."""
    times = sorted(times)
    best, low = 0, 0
    for high, at in enumerate(times):
        while times[low] < at - window:
            low += 1
        best = max(best, high - low + 1)
    return best


def assert_strict_window(
    grants: list[tuple[int, str]], requests: int, reserve: int, seconds: float = W
) -> None:
    """No window (closed) ever holds more than N grants, nor more than N - reserve polls; a
    background grant never took the last slot of a reserve of two or more. (A slot is held at
    least one window after its grant, so what holds for held slots holds for grants.)"""
    window = round(seconds * MICRO)
    times = sorted(t for t, _ in grants)
    assert _most_in_a_window(times, window) <= requests, f"> {requests} grants in {seconds} s"
    polls = [t for t, lane in grants if lane == "poll"]
    assert _most_in_a_window(polls, window) <= requests - reserve, "polls took a reserved slot"
    for granted, lane in grants:
        if lane == "background":
            in_window = sum(1 for t in times if granted - window <= t <= granted)
            assert in_window <= requests - max(0, reserve - 1), "background took the last slot"


def assert_arrivals_within(
    arrivals: list[tuple[int, str]], requests: int, reserve: int, seconds: float = W
) -> None:
    """What the PBX sees: never more than N arrivals in any closed window, nor more than
    N - reserve polls."""
    window = round(seconds * MICRO)
    assert _most_in_a_window([t for t, _ in arrivals], window) <= requests, "the PBX saw > N"
    polls = [t for t, lane in arrivals if lane == "poll"]
    assert _most_in_a_window(polls, window) <= requests - reserve, "the PBX saw > N - R polls"


ops_strategy = st.lists(
    st.tuples(
        st.sampled_from(["poll", "action", "background"]),
        st.floats(min_value=0, max_value=0.05),
        st.sampled_from([0.0, 0.1, 0.3]),
        st.floats(min_value=0, max_value=MAX_HOLD / 2),
        st.floats(min_value=0, max_value=MAX_HOLD / 2 - 0.02),
        st.booleans(),
    ),
    min_size=2,
    max_size=8,
)
workloads = st.lists(ops_strategy, min_size=2, max_size=4)
property_settings = settings(
    max_examples=6,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _check_workload(done: list[tuple[int, int, str]]) -> None:
    assert done, "nothing was granted at all"
    assert_strict_window([(granted, lane) for granted, _, lane in done], N, RESERVE)
    assert_arrivals_within([(arrived, lane) for _, arrived, lane in done], N, RESERVE)


@property_settings
@given(workload=workloads)
def test_processes_sharing_redis_never_let_the_pbx_see_more_than_n(
    redis_client, budget_key, workload
):
    key = f"{budget_key}:{time.monotonic_ns()}"  # a fresh budget for every example
    make = functools.partial(_redis_budget, key, N, W, RESERVE)
    make().declare_unused()
    results = run_in_processes([functools.partial(_run_ops, make, ops) for ops in workload])
    _check_workload([record for result in results for record in result])


@property_settings
@given(workload=workloads)
def test_threads_sharing_a_local_budget_never_let_the_pbx_see_more_than_n(workload):
    budget = _local_budget(N, W, RESERVE)
    results = run_in_threads([functools.partial(_run_ops, lambda: budget, ops) for ops in workload])
    _check_workload([record for result in results for record in result])


class FakeClock:
    """A clock that moves only when told, so a budget's every decision can be checked exactly."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# Steps in 1/64 s and holds in 1/8 s: exact in binary floating point, so "exactly one window"
# means exactly that.
_TICK = 1 / 64


@settings(max_examples=300, deadline=None, database=None)
@given(
    limits=st.sampled_from([(3, 0), (4, 2), (5, 1), (6, 2)]),
    ops=st.lists(
        st.tuples(
            st.sampled_from(PRIORITIES),
            st.integers(min_value=0, max_value=40),  # ticks before asking
            st.integers(min_value=0, max_value=4),  # grant -> arrival, eighths of the hold
            st.integers(min_value=0, max_value=4),  # arrival -> response end, eighths
            st.booleans(),  # released (False: the holder died)
        ),
        max_size=80,
    ),
)
def test_arrivals_never_exceed_the_limit_whatever_the_delays(limits, ops):
    """A request reaches the PBX any time between its grant and the end of its response, which
    ends within its hold; its holder releases it then, or dies. However those fall, the PBX
    never sees more than N arrivals (N - R polls) in a window."""
    requests, reserve = limits
    window, hold = 1.0, 0.5
    clock = FakeClock()
    budget = LocalBudget(
        requests=requests,
        window=window,
        reserve=reserve,
        max_hold=hold,
        pbx_limit=TEST_PBX,
        clock=clock,
    )
    events: list[tuple[float, int, str, Any]] = []
    arrivals: list[tuple[int, str]] = []

    def run_until(moment: float) -> None:
        while events and events[0][0] <= moment:
            at, _, kind, what = heapq.heappop(events)
            clock.now = at
            if kind == "arrive":
                arrivals.append((round(at * MICRO), what))
            else:
                budget.release(what)
        clock.now = moment

    for sequence, (lane, ticks, delay, response, released) in enumerate(ops):
        run_until(clock.now + ticks * _TICK)
        try:
            grant = budget.acquire(priority=lane, max_wait=0, hold=hold)
        except BudgetExhausted:
            continue
        arrive = clock.now + delay * hold / 8
        heapq.heappush(events, (arrive, 2 * sequence, "arrive", lane))
        if released:
            heapq.heappush(events, (arrive + response * hold / 8, 2 * sequence + 1, "end", grant))
    run_until(clock.now + 10.0)
    assert_arrivals_within(arrivals, requests, reserve, seconds=window)


@dataclass
class _ModelSlot:
    grant: Grant
    ends: float
    in_flight: bool = True


def _expected_wait(ends: list[float], cap: int, now: float) -> float | None:
    """The reference rule: None if fewer than ``cap`` slots are held, else the time until the
    one whose end brings the count below ``cap`` ends."""
    if len(ends) < cap:
        return None
    return sorted(ends)[len(ends) - cap] - now


lane_steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("acquire"),
            st.sampled_from(PRIORITIES),
            st.sampled_from([0.0, 0.0, 0.01, 0.05, 0.1, 0.3]),
            st.sampled_from([0.0, 0.0, 0.2, 1.0]),
        ),
        st.tuples(
            st.just("release"),
            st.integers(min_value=0, max_value=50),
            st.sampled_from([0.0, 0.01, 0.1]),
            st.just(0.0),
        ),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None, database=None)
@given(steps=lane_steps, limits=st.sampled_from([(4, 2), (5, 1), (6, 2), (3, 0), (18, 2)]))
def test_each_lane_follows_its_own_rule(steps, limits):
    """Every decision of the budget, against the written rules (fake clock, no waiting):
    counting the slots held now (an unreleased slot until grant + hold + W, a released one
    until its release + W), a poll needs polls < N - R *and* all < N (so actions within the
    reserve never delay it), an action all < N, a background request all < N - (R - 1); a
    refusal says when enough slots are expected to end (one in flight: a typical hold after
    its grant, not before now, plus W, never after its bound)."""
    requests, reserve = limits
    window, smoothing = 1.0, 0.1
    clock = FakeClock()
    budget = LocalBudget(
        requests=requests,
        window=window,
        reserve=reserve,
        block_seconds=60,
        max_hold=1.0,
        pbx_limit=TEST_PBX,
        clock=clock,
    )
    slots: list[_ModelSlot] = []
    typical: float | None = None

    def expected_end(slot: _ModelSlot, now: float) -> float:
        if not slot.in_flight:
            return slot.ends
        return min(slot.ends, max(now, slot.grant.at + (typical or 0.0)) + window)

    for kind, choice, step, hold in steps:
        clock.now += step
        now = clock.now
        held = [slot for slot in slots if slot.ends >= now]
        if kind == "release":
            in_flight = [slot for slot in held if slot.in_flight]
            if not in_flight:
                continue
            slot = in_flight[choice % len(in_flight)]
            budget.release(slot.grant)
            slot.ends, slot.in_flight = now + window, False
            sample = now - slot.grant.at
            typical = sample if typical is None else typical + (sample - typical) * smoothing
            continue
        lane = choice
        total_cap = requests - max(0, reserve - 1) if lane == "background" else requests
        waits = [_expected_wait([expected_end(s, now) for s in held], total_cap, now)]
        if lane == "poll":
            polls = [expected_end(s, now) for s in held if s.grant.priority == "poll"]
            waits.append(_expected_wait(polls, requests - reserve, now))
        binding = [wait for wait in waits if wait is not None]
        try:
            grant = budget.acquire(priority=lane, max_wait=0, hold=hold)
        except BudgetExhausted as refused:
            assert binding, f"{lane} refused although no rule binds"
            assert refused.retry_after == pytest.approx(max(binding), abs=1e-5)
            continue
        assert not binding, f"{lane} granted although its rule says wait {max(binding)}"
        assert grant.at == now and grant.hold == hold and grant.priority == lane
        slots.append(_ModelSlot(grant, now + hold + window))
    usage = budget.usage()
    assert usage.total == sum(1 for slot in slots if slot.ends >= clock.now)
    assert usage.hold == pytest.approx(typical or 0.0)


def test_an_unreleased_slot_counts_until_its_hold_bound():
    clock = FakeClock()
    budget = LocalBudget(
        requests=1, window=1.0, reserve=0, max_hold=2.0, pbx_limit=TEST_PBX, clock=clock
    )
    budget.acquire(hold=2.0)
    clock.now += 3.0  # grant + hold + window: still held (strict)
    with pytest.raises(BudgetExhausted):
        budget.acquire()
    clock.now += 1e-6
    budget.acquire()


def test_a_released_slot_counts_one_window_after_its_release():
    clock = FakeClock()
    budget = LocalBudget(
        requests=1, window=1.0, reserve=0, max_hold=2.0, pbx_limit=TEST_PBX, clock=clock
    )
    first = budget.acquire(hold=2.0)
    clock.now += 0.25
    budget.release(first)
    assert budget.usage() == (1, 1, 0, 0.25)  # the typical hold is the first sample
    clock.now += 1.0
    with pytest.raises(BudgetExhausted) as raised:
        budget.acquire()
    assert raised.value.retry_after == pytest.approx(0.0, abs=1e-5)
    clock.now += 1e-6
    second = budget.acquire(hold=2.0)
    clock.now += 0.75
    budget.release(second)
    assert budget.usage().hold == pytest.approx(0.25 + (0.75 - 0.25) * 0.1)


def test_a_slot_in_flight_is_expected_to_end_a_typical_hold_after_its_grant():
    """The wait a refusal names is an estimate, not the slot's bound: one in flight is expected
    a typical hold after its grant, or now if it is past that, plus the window."""
    clock = FakeClock()
    budget = LocalBudget(
        requests=1, window=1.0, reserve=0, max_hold=10.0, pbx_limit=TEST_PBX, clock=clock
    )
    budget.release(budget.acquire(hold=10.0))  # released at once: typical hold 0
    clock.now += 1.5
    budget.acquire(hold=10.0)
    with pytest.raises(BudgetExhausted) as raised:
        budget.acquire()
    assert raised.value.retry_after == pytest.approx(1.0, abs=1e-5)  # not 11 s
    clock.now += 4.0  # the answer is late: it will end no sooner than now
    with pytest.raises(BudgetExhausted) as raised:
        budget.acquire()
    assert raised.value.retry_after == pytest.approx(1.0, abs=1e-5)


def test_redis_counts_a_slot_until_its_release_plus_the_window(redis_client, budget_key):
    budget = _redis_budget(budget_key, 1, 0.3, 0, max_hold=5.0)
    grant = budget.acquire(hold=5.0)
    with pytest.raises(BudgetExhausted) as raised:
        budget.acquire(max_wait=0)
    assert raised.value.retry_after < 0.31  # in flight: expected now + W, not its bound
    time.sleep(0.35)
    with pytest.raises(BudgetExhausted):
        budget.acquire(max_wait=0)  # unreleased it still counts, up to grant + 5 s + W
    budget.release(grant)
    assert 0.3 < budget.usage().hold < 0.5
    with pytest.raises(BudgetExhausted):
        budget.acquire(max_wait=0)  # released: one window more
    second = budget.acquire(max_wait=1.0)
    assert 0.3 < second.at - grant.at - budget.usage().hold < 0.45


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_a_hold_above_the_longest_is_refused(redis_client, budget_key, kind):
    budget = _budget(kind, budget_key, 5, 1.0, 1)
    with pytest.raises(InvalidArgument, match="longest hold"):
        budget.acquire(hold=MAX_HOLD + 0.1)
    assert budget.used() == 0
    assert budget.acquire().hold == MAX_HOLD  # by default a caller may hold the longest


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_actions_within_the_reserve_never_delay_polls(redis_client, budget_key, kind):
    requests, reserve = 6, 2
    budget = _budget(kind, budget_key, requests, 5.0, reserve)
    for _ in range(reserve):
        budget.acquire(priority="action")
    for _ in range(requests - reserve):  # the polls' whole share, at once
        budget.acquire(priority="poll", max_wait=0)
    with pytest.raises(BudgetExhausted):
        budget.acquire(priority="action", max_wait=0)  # and then nothing is left


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_background_borrows_the_reserve_but_leaves_the_last_slot(redis_client, budget_key, kind):
    requests, reserve = 6, 2
    budget = _budget(kind, budget_key, requests, 5.0, reserve)
    for _ in range(requests - reserve):
        budget.acquire(priority="poll", max_wait=0)
    budget.acquire(priority="background", max_wait=0)  # one reserve slot is idle: borrowed
    with pytest.raises(BudgetExhausted):
        budget.acquire(priority="background", max_wait=0)  # the last one is the actions'
    with pytest.raises(BudgetExhausted):
        budget.acquire(priority="poll", max_wait=0)
    budget.acquire(priority="action", max_wait=0)
    assert budget.used() == requests


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_background_may_take_a_single_reserve_slot(redis_client, budget_key, kind):
    """With a one-slot reserve background fetches share it: an action then waits for the
    next slot that frees (and claims it) instead of finding one at once."""
    requests, reserve = 6, 1
    budget = _budget(kind, budget_key, requests, 5.0, reserve)
    for _ in range(requests - reserve):
        budget.acquire(priority="poll", max_wait=0)
    budget.acquire(priority="background", max_wait=0)
    with pytest.raises(BudgetExhausted):
        budget.acquire(priority="action", max_wait=0)
    assert budget.usage()[:3] == (requests, requests - reserve, 0)


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_usage_tells_the_lanes_apart(redis_client, budget_key, kind):
    budget = _budget(kind, budget_key, 6, 0.3, 2)
    assert budget.usage() == (0, 0, 0, 0.0)
    for lane in ("poll", "action", "poll", "background", "action"):
        budget.acquire(priority=lane, max_wait=0, hold=0.0)
    usage = budget.usage()
    assert (usage.total, usage.polls, usage.actions) == (5, 2, 2)
    time.sleep(0.35)
    assert budget.usage()[:3] == (0, 0, 0)  # all left the window


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_a_waiting_action_gets_the_next_free_slot_before_a_busy_poller(
    redis_client, budget_key, kind
):
    """Polls re-ask the instant a slot frees; an agent's action that waits must not lose the
    freed slot to them again and again."""
    requests, reserve, window = 4, 2, 1.0
    if kind == "redis":
        make: Callable[[], Budget] = functools.partial(
            _redis_budget, budget_key, requests, window, reserve
        )
    else:
        shared = _local_budget(requests, window, reserve)
        make = lambda: shared  # noqa: E731
    budget = make()
    first = _request(budget, "poll", 0).at
    time.sleep(0.3)
    _request(budget, "poll", 0)
    _request(budget, "action", 0)
    _request(budget, "action", 0)  # all held; the next slot frees at first + 1 s

    def busy_poller() -> list[float]:
        poller, granted = make(), []
        stop_at = time.monotonic() + 1.2
        while time.monotonic() < stop_at:
            try:
                granted.append(_request(poller, "poll", 0).at)
            except BudgetExhausted:
                time.sleep(0.001)
        return granted

    def waiting_action() -> float:
        time.sleep(0.1)  # the poller is busy by now
        return _request(make(), "action", 2.0).at

    polls, action = run_in_threads([busy_poller, waiting_action])
    assert action < first + window + 0.15, "the action lost the freed slot"
    assert all(granted > action for granted in polls)


@pytest.mark.parametrize("kind", ["redis", "local"])
@pytest.mark.parametrize(
    ("grants", "lane", "frees"),
    [
        # polls' share spent, room in all: wait for the oldest poll, not the action after it
        (["poll", "poll", "action"], "poll", 0),
        # all slots spent by actions, polls' share free: wait for the oldest slot of all
        (["action", "action", "action", "poll"], "poll", 0),
        # both rules bind: the later of the two (the oldest poll, granted after two actions)
        (["action", "action", "poll", "poll"], "poll", 2),
        # background: until fewer than N - (R - 1) = N - 1 are held
        (["action", "poll", "action"], "background", 0),
        (["poll", "poll", "action", "action"], "action", 0),
    ],
)
def test_a_refusal_says_when_its_own_rule_frees_a_slot(
    redis_client, budget_key, kind, grants, lane, frees
):
    requests, reserve, window = 4, 2, 1.0
    budget = _budget(kind, budget_key, requests, window, reserve)
    times = []
    for granted_lane in grants:
        times.append(budget.acquire(priority=granted_lane, max_wait=0, hold=0.0).at)
        time.sleep(0.05)
    before = _now(budget)
    with pytest.raises(BudgetExhausted) as raised:
        budget.acquire(priority=lane, max_wait=0)
    after = _now(budget)
    assert times[frees] + window - after - 0.01 <= raised.value.retry_after
    assert raised.value.retry_after <= times[frees] + window - before + 0.01


def _check_block_silences_everyone(results: list[dict[str, Any]], start: int, end: int) -> None:
    for result in results:
        assert result["blocked"], "a worker never saw the block"
        assert not [t for t in result["grants"] if start <= t < end], "granted while blocked"
    grants = [t for result in results for t in result["grants"]]
    assert [t for t in grants if t < start], "nothing ran before the block"
    assert [t for t in grants if t >= end], "nothing resumed after the block"


def test_a_403_silences_every_process_for_the_block_time(redis_client, budget_key):
    make = functools.partial(_redis_budget, budget_key, 6, 0.5, 1)
    started = time.monotonic()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [
        context.Process(
            target=_collect, args=(functools.partial(_poll_until, make, 2.4), results, i)
        )
        for i in range(3)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.6)
    until = make().report_blocked(1.0)
    assert make().blocked_until() == pytest.approx(until)
    collected = [results.get(timeout=30)[1] for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    assert time.monotonic() - started < 10
    _check_block_silences_everyone(collected, round((until - 1.0) * MICRO), round(until * MICRO))
    assert all(abs(u - until) < 0.01 for result in collected for u in result["blocked"])
    assert redis_client.pttl(f"{budget_key}:blocked") == -2  # expired, nothing left behind


def test_a_403_silences_every_thread_of_a_local_budget():
    budget = _local_budget(6, 0.5, 1)
    box: list[float] = []

    def block_later() -> dict[str, Any]:
        time.sleep(0.6)
        budget.report_blocked(1.0)
        box.append(time.monotonic())
        return {}

    jobs = [functools.partial(_poll_until, lambda: budget, 2.4) for _ in range(3)]
    *results, _ = run_in_threads([*jobs, block_later])
    start = round(box[0] * MICRO)
    _check_block_silences_everyone(results, start, start + round(0.95 * MICRO))


def _check_reserve(results: list[dict[str, Any]], seconds: float, requests: int, reserve: int):
    *polls, actions = results
    assert actions["refused"] == 0, "an action found no slot while pollers were busy"
    poll_count = sum(len(result["grants"]) for result in polls)
    # The pollers really saturated their share of the window.
    assert poll_count >= 0.75 * (requests - reserve) * seconds / 0.5
    grants = [(t, "poll") for result in polls for t in result["grants"]]
    grants += [(t, "action") for t in actions["grants"]]
    assert_strict_window(grants, requests, reserve, seconds=0.5)


def test_the_action_reserve_holds_under_polling_load_across_processes(redis_client, budget_key):
    make = functools.partial(_redis_budget, budget_key, 6, 0.5, 2)
    jobs = [functools.partial(_poll_until, make, 2.0) for _ in range(3)]
    jobs.append(functools.partial(_act_every, make, 0.3, 6))
    _check_reserve(run_in_processes(jobs), 2.0, 6, 2)


def test_the_action_reserve_holds_under_polling_load_across_threads():
    budget = _local_budget(6, 0.5, 2)
    jobs = [functools.partial(_poll_until, lambda: budget, 2.0) for _ in range(3)]
    jobs.append(functools.partial(_act_every, lambda: budget, 0.3, 6))
    _check_reserve(run_in_threads(jobs), 2.0, 6, 2)


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_exhaustion_says_when_the_next_slot_frees(redis_client, budget_key, kind):
    budget = _budget(kind, budget_key, 2, 1.0, 0)
    budget.acquire(hold=0.0)
    budget.acquire(hold=0.0)
    assert budget.used() == 2
    with pytest.raises(BudgetExhausted) as raised:
        budget.acquire(max_wait=0.2)
    assert 0.7 < raised.value.retry_after <= 1.0
    assert "next slot in" in str(raised.value)
    with pytest.raises(InvalidArgument):
        budget.acquire(priority="vip")


def test_waiting_sleeps_until_a_slot_frees(redis_client, budget_key):
    budget = _redis_budget(budget_key, 1, 0.3, 0)
    first = budget.acquire()
    budget.release(first)
    second = budget.acquire(max_wait=1.0)
    assert 0.3 < second.at - first.at < 0.45
    # The logs expire by themselves (window + longest hold + 1 s).
    for log in ("log", "polls", "flight"):
        assert 0 < redis_client.pttl(f"{budget_key}:{log}") <= 1600


def test_a_longer_block_is_never_shortened(redis_client, budget_key):
    budget = _redis_budget(budget_key, 5, 1.0, 0)
    long_until = budget.report_blocked(30)
    assert budget.report_blocked(1) == pytest.approx(long_until)
    with pytest.raises(Blocked) as raised:
        budget.acquire(priority="action", max_wait=5)
    assert raised.value.until == pytest.approx(long_until)
    assert 28 < raised.value.seconds_left <= 30


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="reserve"):
        LocalBudget(requests=2, reserve=2)
    with pytest.raises(ValueError, match="window"):
        LocalBudget(window=0)


@pytest.mark.parametrize(
    ("requests", "window"), [(21, 5.0), (18, 4.9), (20, 1.0)], ids=["more", "shorter", "both"]
)
def test_a_budget_above_the_pbxs_limit_is_refused(redis_client, requests, window):
    for build in (
        lambda: LocalBudget(requests=requests, window=window),
        lambda: RedisBudget(redis_client, key="never-used", requests=requests, window=window),
    ):
        with pytest.raises(ValueError, match="above the PBX's limit of 20 per 5 s"):
            build()
    # A simulator with another limit says so.
    LocalBudget(requests=20, window=1.0, pbx_limit=(20, 1.0))


# --- memory loss: the cold start, and the block that outlives it ---


def test_a_new_key_starts_cold_unless_declared_unused(redis_client, budget_key):
    fresh = _redis_budget(f"{budget_key}:fresh", 5, W, 1)
    with pytest.raises(BudgetExhausted, match="starting cold") as raised:
        fresh.acquire(max_wait=0)
    assert W < raised.value.retry_after <= W + MAX_HOLD + 0.002  # ms resolution
    declared = _redis_budget(f"{budget_key}:declared", 5, W, 1)
    assert declared.declare_unused() is True
    assert declared.declare_unused() is False  # the marker is there now
    declared.acquire(max_wait=0)


def test_it_grants_nothing_for_the_cold_period_after_losing_its_memory(redis_client, budget_key):
    """A flush while a process polls: the PBX may still count what went out just before, and
    holds that were in flight may go on up to their bound, so nothing is granted for W plus
    the longest hold; then polling resumes."""
    make = functools.partial(_redis_budget, budget_key, N, W, RESERVE)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    worker = context.Process(
        target=_collect, args=(functools.partial(_poll_until, make, 2.6), results, 0)
    )
    worker.start()
    time.sleep(0.8)
    lost = _lose_memory(redis_client, budget_key)
    polled = results.get(timeout=30)[1]
    worker.join(timeout=10)
    cold_end = lost + round((W + MAX_HOLD) * MICRO)
    grants = polled["grants"]
    assert [t for t in grants if t < lost], "nothing was polled before the loss"
    assert not [t for t in grants if lost <= t < cold_end], "granted while cold"
    assert [t for t in grants if t >= cold_end], "polling never resumed"
    assert any("starting cold" in refusal for refusal in polled["refused"])
    assert redis_client.exists(f"{budget_key}:memory")  # the marker is back


def _first_grant_after(make_budget: Callable[[], Budget], start_at: float) -> dict[str, Any]:
    budget = make_budget()
    time.sleep(max(0.0, start_at - time.time()))
    refusals = []
    while True:
        try:
            return {"grant": round(_request(budget, "poll", 0).at * MICRO), "refused": refusals}
        except BudgetExhausted as exc:
            refusals.append(round((_now(budget) + exc.retry_after) * MICRO))
            time.sleep(0.01)


def test_two_processes_detecting_the_loss_at_once_wait_for_the_same_cold_start(
    redis_client, budget_key
):
    make = functools.partial(_redis_budget, budget_key, N, W, RESERVE)
    _request(make(), "poll", 0)
    lost = _lose_memory(redis_client, budget_key)
    start_at = time.time() + 0.3  # both ask at the same moment
    results = run_in_processes(
        [functools.partial(_first_grant_after, make, start_at) for _ in range(2)]
    )
    cold_end = lost + round((W + MAX_HOLD) * MICRO)
    assert all(result["grant"] >= cold_end for result in results)
    # One decision: both were told the same end of the cold period.
    first_refusals = [result["refused"][0] for result in results]
    assert abs(first_refusals[0] - first_refusals[1]) < 50_000


def test_a_stored_block_survives_the_loss_and_nothing_is_granted(
    redis_client, budget_key, tmp_path
):
    store = FileBlockStore(tmp_path / "pbx-block")
    guarded = _redis_budget(budget_key, N, W, RESERVE, block_store=store)
    bare = _redis_budget(budget_key, N, W, RESERVE)
    until = guarded.report_blocked(60)
    assert store.load() == pytest.approx(until)
    _lose_memory(redis_client, budget_key)
    # Before any decision noticed the loss, the store still tells the block.
    assert guarded.blocked_until() == pytest.approx(until)
    assert bare.blocked_until() is None
    with pytest.raises(BudgetExhausted, match="starting cold"):
        bare.acquire(max_wait=0)  # noticed the loss; it has no store to restore from
    with pytest.raises(Blocked) as raised:
        guarded.acquire(max_wait=0)  # put the stored block back first
    assert raised.value.until == pytest.approx(until, abs=1e-3)
    with pytest.raises(Blocked):
        bare.acquire(priority="action", max_wait=5)
    assert bare.blocked_until() == pytest.approx(until, abs=1e-3)
    assert bare.used() == 0


def test_a_block_is_kept_in_the_store_while_redis_is_down(tmp_path):
    dead = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    store = FileBlockStore(tmp_path / "pbx-block")
    budget = RedisBudget(dead, key="unreachable", block_store=store)
    before = time.time()
    until = budget.report_blocked(60)
    assert before + 60 <= until <= time.time() + 60
    assert store.load() == pytest.approx(until)
    assert budget.blocked_until() == pytest.approx(until)
    with pytest.raises(BudgetUnavailable):
        budget.acquire()
    storeless = RedisBudget(dead, key="unreachable")
    with pytest.raises(BudgetUnavailable):
        storeless.report_blocked()
    with pytest.raises(BudgetUnavailable):
        storeless.blocked_until()


def test_a_local_budget_starts_with_the_stored_block(tmp_path):
    store = FileBlockStore(tmp_path / "pbx-block")
    until = _local_budget(5, 1.0, 1, block_store=store).report_blocked(30)
    restarted = _local_budget(5, 1.0, 1, block_store=store)
    assert restarted.blocked_until() == pytest.approx(until)
    with pytest.raises(Blocked):
        restarted.acquire(priority="action")


def test_the_file_store_never_shortens_a_block_and_ignores_garbage(tmp_path):
    path = tmp_path / "pbx-block"
    store = FileBlockStore(path)
    assert store.load() is None
    store.save(2000.5)
    store.save(1000.0)
    assert store.load() == 2000.5
    path.write_text("not a time")
    assert store.load() is None
    store.save(1500.0)
    assert store.load() == 1500.0
    assert [p.name for p in tmp_path.iterdir()] == ["pbx-block"]  # no temporary left behind

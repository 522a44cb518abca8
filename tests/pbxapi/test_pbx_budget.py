"""The request budget: strict sliding window, shared block after a 403, the action reserve.

RedisBudget is exercised by several real processes sharing one Redis key; LocalBudget by threads.
Grant times come back from ``acquire`` on the budget's own clock (Redis TIME for RedisBudget),
so the window checks do not depend on process scheduling.
"""

from __future__ import annotations

import functools
import multiprocessing
import queue as queue_module
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbxapi.budget import Budget, LocalBudget, RedisBudget
from pbxapi.errors import Blocked, BudgetExhausted, InvalidArgument

N, W, RESERVE = 4, 0.4, 1
MICRO = 1_000_000

Op = tuple[str, float, float]  # priority, pause before, max_wait


def _redis_budget(key: str, requests: int, window: float, reserve: int) -> RedisBudget:
    connection = redis.Redis(host="127.0.0.1", port=6379)
    return RedisBudget(
        connection, key=key, requests=requests, window=window, reserve=reserve, block_seconds=60
    )


# --- workers (run in a child process or a thread) ---


def _run_ops(make_budget: Callable[[], Budget], ops: list[Op]) -> list[tuple[int, str]]:
    budget = make_budget()
    grants: list[tuple[int, str]] = []
    for priority, pause, max_wait in ops:
        time.sleep(pause)
        try:
            granted = budget.acquire(priority=priority, max_wait=max_wait)
        except BudgetExhausted:
            continue
        grants.append((round(granted * MICRO), priority))
    return grants


def _poll_until(make_budget: Callable[[], Budget], seconds: float) -> dict[str, Any]:
    """Poll as fast as the budget allows; on Blocked stay silent until the block ends."""
    budget = make_budget()
    grants: list[int] = []
    blocked: list[float] = []
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        try:
            grants.append(round(budget.acquire(priority="poll", max_wait=0.3) * MICRO))
        except BudgetExhausted:
            continue
        except Blocked as exc:
            blocked.append(exc.until)
            time.sleep(max(0.0, min(exc.seconds_left, stop_at - time.monotonic())) + 0.01)
    return {"grants": grants, "blocked": blocked}


def _act_every(make_budget: Callable[[], Budget], every: float, count: int) -> dict[str, Any]:
    """An agent action now and then, never willing to wait."""
    budget = make_budget()
    granted, refused = [], 0
    for _ in range(count):
        time.sleep(every)
        try:
            granted.append(round(budget.acquire(priority="action", max_wait=0) * MICRO))
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


def assert_strict_window(
    grants: list[tuple[int, str]], requests: int, reserve: int, seconds: float = W
) -> None:
    """No window (closed) ever holds more than N grants, nor a poll beyond N - reserve."""
    window = round(seconds * MICRO)
    times = sorted(t for t, _ in grants)
    for first, last in zip(times, times[requests:], strict=False):
        assert last - first > window, f"{requests + 1} grants within {seconds} s"
    for granted, priority in grants:
        if priority == "poll":
            in_window = sum(1 for t in times if granted - window <= t <= granted)
            assert in_window <= requests - reserve, "a poll took a reserved slot"


ops_strategy = st.lists(
    st.tuples(
        st.sampled_from(["poll", "action"]),
        st.floats(min_value=0, max_value=0.05),
        st.sampled_from([0.0, 0.1, 0.3]),
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


@property_settings
@given(workload=workloads)
def test_processes_sharing_redis_never_exceed_the_window(redis_client, budget_key, workload):
    key = f"{budget_key}:{time.monotonic_ns()}"  # a fresh budget for every example
    make = functools.partial(_redis_budget, key, N, W, RESERVE)
    results = run_in_processes([functools.partial(_run_ops, make, ops) for ops in workload])
    grants = [grant for result in results for grant in result]
    assert grants, "nothing was granted at all"
    assert_strict_window(grants, N, RESERVE)


@property_settings
@given(workload=workloads)
def test_threads_sharing_a_local_budget_never_exceed_the_window(workload):
    budget = LocalBudget(requests=N, window=W, reserve=RESERVE, block_seconds=60)
    results = run_in_threads([functools.partial(_run_ops, lambda: budget, ops) for ops in workload])
    grants = [grant for result in results for grant in result]
    assert grants
    assert_strict_window(grants, N, RESERVE)


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
    budget = LocalBudget(requests=6, window=0.5, reserve=1, block_seconds=60)
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
    budget = LocalBudget(requests=6, window=0.5, reserve=2, block_seconds=60)
    jobs = [functools.partial(_poll_until, lambda: budget, 2.0) for _ in range(3)]
    jobs.append(functools.partial(_act_every, lambda: budget, 0.3, 6))
    _check_reserve(run_in_threads(jobs), 2.0, 6, 2)


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_exhaustion_says_when_the_next_slot_frees(redis_client, budget_key, kind):
    if kind == "redis":
        budget: Budget = _redis_budget(budget_key, 2, 1.0, 0)
    else:
        budget = LocalBudget(requests=2, window=1.0, reserve=0)
    budget.acquire()
    budget.acquire()
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
    second = budget.acquire(max_wait=1.0)
    assert 0.3 < second - first < 0.45
    assert 0 < redis_client.pttl(f"{budget_key}:log") <= 1300  # the log expires by itself


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

"""Past days of call records, built fast with the live centre's rules.

Stepping the live model second by second through a month would take minutes, so the history is
an event sweep instead: callers arrive (a Poisson process thinned by the day's curve and the
weekday, per queue) and are served first come, first served by the queue's members who are on
shift, each agent free again after talk and wrap-up. Every decision (who calls, patience, ring
and no-answer, talk, transfer, queue timeout, retries, own calls) comes from `rules`, and every
row from a `cdr` builder, so history and live rows have the same shapes and similar figures:
waits grow when a queue is short of agents, as they do live.

Agents' breaks and network drops make them unavailable for a while (taken only when idle, as
live); surges multiply a queue's rate for minutes. Where the sweep differs from live: calls
still going on at `until` are not written (the live centre starts with idle agents and empty
queues), and an agent on a break takes no transferred call (live, a paused agent can).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass

from . import cdr, rules
from .model import Agent, Queue
from .names import external_number
from .rules import Curve

MAX_OFFERS = 3  # agents a caller's call is offered to before they are left to wait it out


@dataclass(slots=True)
class HistoryRow:
    end: float  # when the call ended: rows are written in this order
    record: cdr.CdrRecord
    taken_by: tuple[int, int, float] | None = None  # (queue, member, when) for calls_taken


def history_calls(
    *,
    rng: random.Random,
    queues: list[Queue],
    agents: list[Agent],
    regulars: list[tuple[str, str | None]],
    curve: Curve,
    call_rate: float,
    bursts: bool,
    start: int,
    until: float,
    unique_id: Callable[[float], str],
) -> list[HistoryRow]:
    """Every call that started at or after `start` and ended by `until`, in the order of their
    ends (the order the PBX writes them). `agents` are those who take queue calls."""
    # Per-minute volume and staffing, past `until` as far as a call that started before it can
    # still look (waiting to the timeout, then talking to the longest talk).
    minutes = int((until - start) // 60) + 1
    reach = int((rules.QUEUE_TIMEOUT + rules.TALK_BOUNDS[1]) // 60) + 60
    volume = [curve.at(start + 60 * minute) for minute in range(minutes + reach)]
    staffing = [rules.staffing_level(v, daily=curve.daily) for v in volume]
    events = _arrivals(rng, queues, agents, volume[:minutes], call_rate, bursts, start, until)

    position = {agent.extension: index for index, agent in enumerate(agents)}
    free = [float(start)] * len(agents)  # when each agent can take the next call
    rank = [agent.shift_rank for agent in agents]
    members = [[position[m] for m in q.members if m in position] for q in queues]
    waiting: list[list[float]] = [[] for _ in queues]  # when each admitted caller leaves
    retries: list[tuple[float, int, int, str, int]] = []  # (at, order, queue, number, attempt)
    rows: list[HistoryRow] = []
    order = 0

    def on_shift(index: int, at: float) -> bool:
        return rank[index] < staffing[int((at - start) // 60)]

    def try_again(at: float, queue_index: int, number: str, attempt: int) -> None:
        nonlocal order
        delay = rules.retry_draw(rng, attempt)
        if delay is not None and at + delay < until:
            order += 1
            heapq.heappush(retries, (at + delay, order, queue_index, number, attempt + 1))

    count, next_event = len(events), 0
    while True:
        if retries and (next_event >= count or retries[0][0] < events[next_event][0]):
            t, _, kind, number, attempt = heapq.heappop(retries)
        elif next_event < count:
            t, kind = events[next_event]
            next_event += 1
            number, attempt = "", 1
        else:
            break
        if kind >= len(queues):
            index = kind - len(queues)
            if free[index] > t or not on_shift(index, t):
                continue  # busy or off shift: nothing happens (as live: only idle agents)
            event = rules.idle_event_draw(rng)
            if event == "own_call":
                _own_call(rng, agents, index, t, free, on_shift, unique_id, rows)
            else:
                draw = rules.break_draw if event == "break" else rules.offline_draw
                free[index] = t + draw(rng)
            continue

        queue = queues[kind]
        if not number:
            number, _ = rules.caller_draw(rng, regulars)
        uid = unique_id(t)
        heard = rules.playback_draw(rng)
        if heard is not None:
            record = cdr.queue_playback(
                queue=queue.number, caller=number, when=t, unique_id=uid, heard=heard
            )
            rows.append(HistoryRow(t + heard, record))
            continue
        leaving = waiting[kind]
        while leaving and leaving[0] <= t:
            heapq.heappop(leaving)
        if len(leaving) >= rules.MAX_WAITING:
            record = cdr.queue_busy(queue=queue.number, caller=number, when=t, unique_id=uid)
            rows.append(HistoryRow(t, record))
            try_again(t, kind, number, attempt)
            continue

        patience = rules.patience_draw(rng)
        gives_up = t + min(patience, rules.QUEUE_TIMEOUT)
        answered_at, taker, earliest = None, -1, t
        for _ in range(MAX_OFFERS):
            # The member free soonest (and on shift then); of those free at once, the one
            # idle longest, as the live dispatch chooses.
            best, best_at, best_idle = -1, gives_up, 0.0
            for index in members[kind]:
                idle = free[index]
                at = idle if idle > earliest else earliest
                if at > best_at or (at == best_at and idle >= best_idle):
                    continue
                if rank[index] < staffing[int((at - start) // 60)]:
                    best, best_at, best_idle = index, at, idle
            if best < 0:
                break
            answers, ring = rules.offer_draw(rng)
            if best_at + ring >= gives_up:
                free[best] = max(free[best], gives_up)  # rang until the caller hung up
                break
            if answers:
                answered_at, taker = best_at + ring, best
                break
            free[best] = earliest = best_at + ring
            pause = rules.autopause_draw(rng)
            if pause is not None:
                free[best] += pause

        if taker < 0:
            heapq.heappush(leaving, gives_up)
            waited = int(gives_up - t)
            if patience < rules.QUEUE_TIMEOUT:
                record = cdr.queue_abandoned(
                    queue=queue.number, caller=number, when=t, unique_id=uid, waited=waited
                )
                rows.append(HistoryRow(gives_up, record))
                try_again(gives_up, kind, number, attempt)
                continue
            application, status, message = rules.timeout_draw(rng)
            record = cdr.queue_timed_out(
                queue=queue.number, caller=number, when=t, unique_id=uid, waited=waited,
                application=application, status=status, message=message,
            )  # fmt: skip
            rows.append(HistoryRow(gives_up + message, record))
            if status == "missed":
                try_again(gives_up, kind, number, attempt)
            continue

        assert answered_at is not None
        heapq.heappush(leaving, answered_at)
        talk = rules.talk_draw(rng, queue.talk_median)
        end = answered_at + talk
        final, credited_at = taker, end
        share = rules.transfer_draw(rng)
        if share is not None:
            handed = answered_at + talk * share
            colleagues = [
                index
                for index in range(len(agents))
                if index != taker and free[index] <= handed and on_shift(index, handed)
            ]
            if colleagues:
                final, credited_at = rng.choice(colleagues), handed
                free[taker] = handed + rules.wrapup_draw(rng)
        free[final] = end + rules.wrapup_draw(rng)
        record = cdr.queue_answered(
            queue=queue.number, caller=number, when=t, unique_id=uid,
            agent=agents[final].extension, agent_name=agents[final].name,
            talk=talk, total=int(end - t), recorded=rules.recorded_draw(rng),
        )  # fmt: skip
        taken_by = (queue.number, agents[taker].extension, credited_at)
        rows.append(HistoryRow(end, record, taken_by))

    rows = [row for row in rows if row.end <= until]
    rows.sort(key=lambda row: row.end)  # stable: same end, the earlier start first
    return rows


def _arrivals(
    rng: random.Random,
    queues: list[Queue],
    agents: list[Agent],
    volume: list[float],
    call_rate: float,
    bursts: bool,
    start: int,
    until: float,
) -> list[tuple[float, int]]:
    """(time, kind) in time order: kind < len(queues) is a caller arriving at that queue,
    otherwise something may happen to agent `kind - len(queues)` if idle (`idle_event_draw`)."""
    events: list[tuple[float, int]] = []

    def poisson(kind: int, rate: float, begin: float, end: float) -> None:
        """Arrivals at `rate` times the minute's volume: candidates at the highest volume of
        each hour, each kept with the probability of its minute's (thinning)."""
        first = int((begin - start) // 60)
        while begin < end:
            last = min(first + 60 - first % 60, int((end - start) // 60) + 1)
            top = max(volume[first:last])
            block_end = min(end, start + 60.0 * last)
            t = begin
            while top > 0:
                t += rng.expovariate(rate * top)
                if t >= block_end:
                    break
                if rng.random() * top <= volume[int((t - start) // 60)]:
                    events.append((t, kind))
            begin, first = block_end, last

    for kind, queue in enumerate(queues):
        base = rules.base_rate(call_rate, bursts=bursts) * queue.load
        if base <= 0:
            continue
        poisson(kind, base, start, until)
        t = float(start)
        while bursts:  # surges add callers at (factor - 1) times the usual rate
            t += rng.expovariate(1 / rules.BURST_EVERY)
            if t >= until:
                break
            seconds, factor = rules.burst_draw(rng)
            poisson(kind, base * (factor - 1), t, min(until, t + seconds))
            t += seconds
    for index in range(len(agents)):
        t = float(start)
        while True:
            t += rng.expovariate(1 / rules.IDLE_EVENT_EVERY)
            if t >= until:
                break
            events.append((t, len(queues) + index))
    events.sort()
    return events


def _own_call(
    rng: random.Random,
    agents: list[Agent],
    index: int,
    t: float,
    free: list[float],
    on_shift: Callable[[int, float], bool],
    unique_id: Callable[[float], str],
    rows: list[HistoryRow],
) -> None:
    """An agent who is free and on shift phones a colleague or a customer."""
    agent, other = agents[index], None
    if rules.internal_draw(rng):
        colleagues = [
            i for i in range(len(agents)) if i != index and free[i] <= t and on_shift(i, t)
        ]
        if colleagues:
            other = rng.choice(colleagues)
    callee = str(agents[other].extension) if other is not None else external_number(rng)
    callee_name = agents[other].name if other is not None else None
    status = rules.own_call_outcome(rng, internal=other is not None)
    ring = rules.own_call_ring(rng, status)
    talk = rules.talk_draw(rng) if status == "answered" else 0
    end = t + ring + talk
    free[index] = end
    if other is not None:
        free[other] = max(free[other], end if status == "answered" else t + ring)
    record = cdr.own_call(
        caller=str(agent.extension), caller_name=agent.name, callee=callee, callee_name=callee_name,
        when=t, unique_id=unique_id(t), status=status, talk=talk, total=int(end - t),
    )  # fmt: skip
    rows.append(HistoryRow(end, record))

"""The living call centre behind the simulated PBX.

Queues (100, 101, ...) with member agents (201, 202, ...; 200 is a reception desk outside the
queues). Callers arrive per queue as a Poisson process whose rate follows a daily curve by
Bratislava hour and the weekday (weekends are quiet) plus random bursts, wait, are offered to
the longest-idle available member (ringing), are answered, talk (log-normal durations), now and
then are transferred to a colleague, and leave a CDR row; the agent wraps up. Callers whose
patience runs out abandon (a few hang up within seconds, most after minutes), and some of them
call the same queue again minutes later; callers who reach the queue timeout leave a voicemail
or are cut off; full queues answer busy; some callers only hear the greeting. Agents take breaks
(pause themselves), drop off the network and come back, and make internal and outgoing calls.
Staffing follows the hour (agents log in and out with their shifts; at night one agent per
queue stays). Earlier days are pre-populated with the same rules (`history.py`), so the CDR
holds `history_days` of calls from the start. Every decision is drawn in `rules.py`, every row
built in `cdr.py`.

Time is simulated: `now()` is a Unix time that advances in fixed one-second steps, driven by a
ticker thread at `speed` simulated seconds per real second while the autopilot runs. Everything
is deterministic for a seed and a `start_time`. All state is guarded by one lock; every public
method takes it, so HTTP handlers and tests always see consistent snapshots.

Call records
------------
A row is written when its call ENDS (ids follow the order of ends) and its `when` is when the
call STARTED (for queue calls: when the caller entered the queue; `unique_id` is
`<that epoch>.<sequence>`). So a call from 23:58 to 00:03 gets its row after midnight, after
rows of the new day, under the previous day's date: date-filtered pages of a past day can grow
after midnight. Numbers are strings; external numbers carry the 00 prefix; names of external
callers are null. `complete_duration` is everything from the start to the end; the wait of an
answered queue call is `complete_duration - duration`.

Situation                       type app       status    duration complete  received destination
------------------------------- ---- --------- --------- -------- --------- -------- -----------
an agent answered a queue call  in   queue     answered  T        W+R+T     queue    agent
...then transferred it (1 row)  in   queue     answered  T1+T2    W+R+T1+T2 queue    last agent
hung up waiting (1-5 s or mins) in   queue     missed    0        W         queue    queue
queue timeout, left voicemail   in   voicemail answered  M        W+M       queue    queue
queue timeout, cut off          in   hangup    missed    0        W         queue    queue
queue full (MAX_WAITING)        in   queue     busy      0        0         queue    queue
heard the greeting, hung up     in   playback  answered  G        G         queue    queue
agent's outgoing call           out  call      answered* T or 0   R+T       number   number
agent's internal call           out  call      answered* T or 0   R+T       ext      ext
click-to-call (call/create)     out  call      answered* T or 0   A+R+T     number   number

type: in = incoming, out = outgoing; complete = complete_duration. W = time in the queue, R =
ringing (the agent's, or the other side's), T = talk (T1 + T2: both agents of a transfer, from
the first answer to the hang-up), M = voicemail message, G = greeting heard, A = the agent's own
phone ringing before the PBX dials. answered* = answered, missed or busy (or unauthorized: a
barred external number); duration is 0 unless answered.

Queue rows have `received_name` and (unless an agent took the call) `destination_name` null;
`destination_name` is the agent's name. Own calls carry the agent as `caller` (with
`caller_name`) and the other side's name when it is an extension. Only answered queue calls can
have a `recording_file`, named `q-<queue>-<caller>-<YYYYMMDD>-<HHMMSS>-<unique_id>.mp3` (the
time is `when`). A transfer leaves ONE row: the PBX's queue row, with `destination` the
extension that took the call over (it may be no member of the queue); the first agent's part
shows only in its queue's `calls_taken` (counted when they hand the call over) and live in
call/statistics (the agent leg moves to the new agent, with a new leg unique_id and the same
`from_queue_unique_id`). The wait is unchanged by a transfer. Repeat callers: about a third of
callers who gave up (abandoned, cut off, busy) call the same queue again 1-15 minutes later from
the same number, a fifth of those once more; many are answered then. Most callers' numbers
are new; 15 % are regular customers who call now and then.

Click-to-call (`call/create?caller=EXT&destination=NUMBER`, always "Call queued"): when EXT is a
registered extension that is free (idle, not ringing, talking or in wrap-up) and NUMBER is
1-20 digits other than EXT, EXT's phone rings (one leg in call/statistics: caller EXT, callee
NUMBER, status ringing; the agent is `in_use`); the agent picks up after 2-6 s and the PBX
dials NUMBER (a colleague's extension rings like an internal call; a colleague who is not free
is busy); the other side answers (talk, then an answered row), or does not (missed after 25 s),
or is busy (2 s). The row is written when the call ends, `when` = the request. Otherwise -- an
unknown, unregistered or busy extension, an invalid number, or a number scripted "invalid" --
nothing happens and nothing is written. An agent who does not pick up ("agent_missed") leaves
no row either: the PBX dialled nothing. So "did this number get through?" is answered by an
outgoing row with that `destination` and status answered. Outcomes are random (the agents' own
calls' odds) unless scripted with `set_call_outcome`.

Scripting API for tests (thread-safe)
-------------------------------------
- `add_waiting_caller(queue, caller=None, caller_name=None, wait_time=0) -> unique_id` — a caller
  who waits until answered or cleared (never abandons, never calls again by themselves).
- `set_registered(extension, registered)`, `set_paused(queue, extension, paused)`.
- `start_call(queue, extension, caller=None) -> unique_id` — the agent answers a queue call: the
  longest-waiting caller of that queue (or `caller`, or a new one); two legs in call/statistics.
  Scripted calls last until `end_call(extension)`, which writes the answered CDR row.
- `transfer_call(extension, to_extension)` — the agent hands the queue call they are talking on
  to a free extension, who talks until `end_call(to_extension)` (one row, destination the new
  extension; KeyError: no answered queue call; ValueError: the other extension is not free).
- `clear_waiting(queue)` (no CDR rows), `abandon_caller(unique_id, after=None)` (the caller
  hangs up now: a missed row whose wait is their time in the queue, or `after` seconds).
- `call_create_log() -> list[dict]` — every call/create request: `at` (simulated Unix time),
  `caller`, `destination` (as sent) and `unique_id` of the call it placed (None: nothing happened).
- `set_call_outcome(number, outcome)` — how click-to-call to `number` ends from now on:
  "answered", "missed", "busy", "unauthorized", "agent_missed" (the agent does not pick up),
  "invalid" (the PBX cannot dial it: nothing happens), or None (random again).
- `cdr_append(when=..., caller=..., received=..., ...) -> row` — write one row now with any
  `when` (e.g. yesterday's: a late row); defaults make it a missed call into the first queue.
- `cdr_rows_for(day) -> int` (rows whose `when` is on that local date),
  `cdr_delete_rows(ids=..., day=...) -> int` (the CDR shrinks), `cdr_shift(day, rows)` (rows of
  that day move: `rows` > 0 new rows appear before them and every later id grows by that many;
  `rows` < 0 the day's first rows vanish).
- `queue_numbers() -> list[int]`, `members(queue) -> list[int]`, `extensions() -> list[int]`,
  `member_state(queue, extension) -> dict`, `waiting(queue) -> list[dict]`.
- `set_fault(mode)` with mode None, "html500", "html200", "timeout", "trickle", "truncated",
  "down", "forbidden" (what each does: `pbxapi.simulator.server`).
- `block_ip(ip, seconds)`, `unblock_all()`.
- `pause_autopilot()`, `resume_autopilot()`; `advance(seconds, live=True)` steps the model by
  hand (live=False moves only the clock: waits and talk times grow, nothing else happens).
- `now() -> float` (simulated Unix time), `snapshot() -> dict` (the whole state, for comparisons),
  `cdr_count() -> int`, `advanced_calls() -> list`.
"""

from __future__ import annotations

import heapq
import math
import random
import re
import threading
import time
from datetime import date, datetime, timedelta
from typing import Any

from . import cdr, rules, wire
from .audio import fake_mp3
from .cdr import CDR_PAGE_MAX, CdrRecord, CdrStore
from .config import SimulatorConfig
from .history import history_calls
from .limiter import RateLimiter
from .model import IDLE, RINGING, TALKING, WRAPUP, Agent, Call, Caller, Member, Queue
from .names import external_number, person_name, queue_name
from .rules import Curve

STEP = 1.0  # simulated seconds per model step
TICK = 0.1  # real seconds between ticker wake-ups
MAX_STEPS_PER_TICK = 3_000  # when the machine cannot keep up, simulated time runs slower

FAULT_MODES = (None, "html500", "html200", "timeout", "trickle", "truncated", "down", "forbidden")
CALL_OUTCOMES = (None, "answered", "missed", "busy", "unauthorized", "agent_missed", "invalid")

FIRST_QUEUE = 100
RECEPTION = 200
FIRST_AGENT = 201

_NAME_RE = re.compile(r"^[^\W_]+(?: [^\W_]+)*$")
_DIGITS_RE = re.compile(r"^\d{1,20}$")
EXTENSION_FIELDS = ("name", "call_forwarding", "outboundcid")


class CallCentre:
    """The simulated PBX state and its autopilot. Public methods are thread-safe."""

    def __init__(self, config: SimulatorConfig, limiter: RateLimiter | None = None) -> None:
        self.config = config
        self.limiter = limiter or RateLimiter(
            limit=config.rate_limit, window=config.rate_window, block_seconds=config.block_seconds
        )
        self.lock = threading.RLock()
        self.fault: str | None = None
        self._setup_rng = random.Random(f"{config.seed}:setup")
        self._history_rng = random.Random(f"{config.seed}:history")
        self._rng = random.Random(f"{config.seed}:live")
        self._now = float(int(config.start_time if config.start_time is not None else time.time()))
        self._seq = self._setup_rng.randrange(100, 1000)
        self._curve = Curve(daily=config.daily_curve, weekends=config.weekends)
        self.queues: dict[int, Queue] = {}
        self.agents: dict[int, Agent] = {}
        self.outbound_numbers = ["0233001100", "0233001101", "0233001150", "0233001199"]
        self.data: dict[str, str] = {}
        self._cdr = CdrStore()
        self._later: list[tuple[float, int, CdrRecord]] = []  # rows of calls still ending
        # Callers who gave up and will call again: (when, order, queue, number, name, attempt).
        self._retries: list[tuple[float, int, int, str, str | None, int]] = []
        self._order = 0  # tie-breaker for the two heaps above
        self._advanced: list[tuple[str | None, dict[str, list[str]]]] = []
        self._call_log: list[dict[str, Any]] = []
        self._call_outcomes: dict[str, str] = {}
        self._regulars: list[tuple[str, str | None]] = []
        self._autopilot = config.autopilot
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

        self._build_centre()
        warmup = config.warmup_seconds if config.autopilot else 0.0
        self._populate_history(until=self._now - warmup)
        self._steps(int(warmup / STEP), live=True)

    # ----------------------------------------------------------------------------- setup

    def _build_centre(self) -> None:
        rng = self._setup_rng
        for index in range(self.config.queues):
            number = FIRST_QUEUE + index
            self.queues[number] = Queue(number, queue_name(index))
        self.agents[RECEPTION] = Agent(
            extension=RECEPTION,
            name="Recepcia",
            registered=True,
            outboundcid=self.outbound_numbers[0],
            phone_active=False,
            phone_capable=False,
            call_forwarding=None,
            allowed_changes=["name"],
        )
        numbers = list(self.queues)
        for index in range(self.config.agents):
            extension = FIRST_AGENT + index
            changes = ["call_forwarding", "name", "outboundcid"]
            if rng.random() < 0.25:
                changes = ["call_forwarding", "name"]
            self.agents[extension] = Agent(
                extension=extension,
                name=person_name(rng),
                registered=rng.random() >= 0.15,
                outboundcid=rng.choice((None, "", *self.outbound_numbers)),
                phone_active=rng.random() < 0.4,
                phone_capable=True,
                call_forwarding=external_number(rng) if rng.random() < 0.1 else None,
                allowed_changes=changes,
            )
            # A primary queue round-robin (so every queue has members), plus up to two more.
            primary = numbers[index % len(numbers)]
            extra = rng.sample(numbers, k=min(len(numbers), rng.choice((0, 1, 1, 2))))
            for number in [primary, *extra]:
                self.queues[number].members.setdefault(extension, Member(extension))
        loads = [rng.uniform(0.8, 1.25) for _ in self.queues]
        for queue, load in zip(self.queues.values(), loads, strict=True):
            queue.members = dict(sorted(queue.members.items()))
            queue.load = load * len(loads) / sum(loads)
            queue.talk_median = rules.TALK_MEDIAN * rng.uniform(0.85, 1.3)
        for index, agent in enumerate(self._queue_agents()):
            # The first agent of each queue works every shift, so no queue is ever unstaffed.
            agent.shift_rank = (
                rng.uniform(0, 0.05) if index < len(numbers) else rng.uniform(0.05, 1)
            )
            if not agent.registered:
                agent.offline_until = self._now + rng.uniform(300, 7200)
        if self.config.autopilot:
            staffing = self._curve.staffing(self._now)
            for agent in self._queue_agents():
                if agent.shift_rank >= staffing:
                    agent.registered, agent.off_shift, agent.offline_until = False, True, None
        self._regulars = rules.regulars_draw(rng, len(self.queues))

    def _queue_agents(self) -> list[Agent]:
        """Every agent but the reception desk."""
        return [a for a in self.agents.values() if a.extension != RECEPTION]

    def _populate_history(self, *, until: float) -> None:
        """CDR rows of `history_days` days (today included) up to `until`, built with the live
        rules; today's answered queue calls count in the members' counters."""
        days = self.config.history_days
        if days <= 0:
            return
        today = wire.local_date(until)
        first = today - timedelta(days=days - 1)
        start = int(datetime(first.year, first.month, first.day, tzinfo=wire.TZ).timestamp())
        today_start = datetime(today.year, today.month, today.day, tzinfo=wire.TZ).timestamp()
        rows = history_calls(
            rng=self._history_rng,
            queues=list(self.queues.values()),
            agents=self._queue_agents(),
            regulars=self._regulars,
            curve=self._curve,
            call_rate=self.config.call_rate,
            bursts=self.config.bursts,
            start=start,
            until=until,
            unique_id=self._unique_id,
        )
        for row in rows:
            self._cdr.append(row.record)
            if row.taken_by is None or row.record.when < today_start:
                continue
            queue, extension, at = row.taken_by
            member = self.queues[queue].members[extension]
            member.calls_taken += 1
            member.last_call_at = max(at, member.last_call_at or at)

    # ----------------------------------------------------------------------------- clock

    def start(self) -> None:
        """Start the ticker thread that advances simulated time while the autopilot runs."""
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick_forever, name="pbx-sim", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None

    @property
    def stopping(self) -> threading.Event:
        """Set when the simulator shuts down (lets stalled fault handlers wake up)."""
        return self._stop

    def _tick_forever(self) -> None:
        last = time.monotonic()
        owed = 0.0
        while not self._stop.wait(TICK):
            current = time.monotonic()
            elapsed, last = current - last, current
            with self.lock:
                if not self._autopilot:
                    owed = 0.0
                    continue
                owed += elapsed * self.config.speed
                steps = int(owed / STEP)
                owed -= steps * STEP
                self._steps(min(steps, MAX_STEPS_PER_TICK), live=True)

    def _steps(self, count: int, *, live: bool) -> None:
        for _ in range(count):
            self._now += STEP
            if live:
                self._step()

    def _step(self) -> None:
        self._write_due_rows()
        self._arrivals()
        self._abandonments()
        self._progress_calls()
        self._agent_life()
        self._dispatch()

    def _unique_id(self, epoch: float) -> str:
        self._seq += 1
        return f"{int(epoch)}.{self._seq}"

    # ----------------------------------------------------------------------------- the model

    def _poisson(self, lam: float) -> int:
        limit, count, product = math.exp(-lam), 0, self._rng.random()
        while product > limit:
            count += 1
            product *= self._rng.random()
        return count

    def _arrivals(self) -> None:
        while self._retries and self._retries[0][0] <= self._now:
            _, _, number, caller, name, attempt = heapq.heappop(self._retries)
            self._caller_arrives(self.queues[number], caller, name, attempt)
        base = rules.base_rate(self.config.call_rate, bursts=self.config.bursts)
        rate = base * self._curve.at(self._now) * STEP
        for queue in self.queues.values():
            self._update_burst(queue)
            for _ in range(self._poisson(rate * queue.load * queue.burst_factor)):
                caller, name = rules.caller_draw(self._rng, self._regulars)
                self._caller_arrives(queue, caller, name)

    def _update_burst(self, queue: Queue) -> None:
        if queue.burst_until is not None and self._now >= queue.burst_until:
            queue.burst_until, queue.burst_factor = None, 1.0
        starts = self.config.bursts and queue.burst_until is None
        if starts and self._rng.random() < STEP / rules.BURST_EVERY:
            seconds, queue.burst_factor = rules.burst_draw(self._rng)
            queue.burst_until = self._now + seconds

    def _caller_arrives(
        self, queue: Queue, number: str, name: str | None, attempt: int = 1
    ) -> None:
        unique_id = self._unique_id(self._now)
        heard = rules.playback_draw(self._rng)
        if heard is not None:
            record = cdr.queue_playback(
                queue=queue.number, caller=number, when=self._now, unique_id=unique_id, heard=heard
            )
            self._write_later(self._now + heard, record)
            return
        if len(queue.waiting) >= rules.MAX_WAITING:
            record = cdr.queue_busy(
                queue=queue.number, caller=number, when=self._now, unique_id=unique_id
            )
            self._cdr.append(record)
            self._try_again(queue, number, name, attempt)
            return
        patience = rules.patience_draw(self._rng)
        queue.waiting.append(
            Caller(unique_id, number, name, queue.number, self._now, patience, attempt=attempt)
        )

    def _try_again(self, queue: Queue, number: str, name: str | None, attempt: int) -> None:
        """A caller who gave up may call the same queue again in a few minutes."""
        delay = rules.retry_draw(self._rng, attempt)
        if delay is not None:
            self._order += 1
            retry = (self._now + delay, self._order, queue.number, number, name, attempt + 1)
            heapq.heappush(self._retries, retry)

    def _abandonments(self) -> None:
        for queue in self.queues.values():
            for caller in list(queue.waiting):
                waited = self._now - caller.entered_at
                if caller.patience is None:
                    continue
                if waited >= rules.QUEUE_TIMEOUT:
                    self._queue_timeout(queue, caller)
                elif waited >= caller.patience:
                    self._abandon(queue, caller)
                    self._try_again(queue, caller.number, caller.name, caller.attempt)

    def _queue_timeout(self, queue: Queue, caller: Caller) -> None:
        """Waited too long: some leave a voicemail (its row comes when they finish it), the
        others are cut off."""
        self._caller_leaves(queue, caller)
        application, status, message = rules.timeout_draw(self._rng)
        record = cdr.queue_timed_out(
            queue=queue.number,
            caller=caller.number,
            when=caller.entered_at,
            unique_id=caller.unique_id,
            waited=int(self._now - caller.entered_at),
            application=application,
            status=status,
            message=message,
        )
        self._write_later(self._now + message, record)
        if status == "missed":
            self._try_again(queue, caller.number, caller.name, caller.attempt)

    def _abandon(self, queue: Queue, caller: Caller, waited: int | None = None) -> None:
        self._caller_leaves(queue, caller)
        record = cdr.queue_abandoned(
            queue=queue.number,
            caller=caller.number,
            when=caller.entered_at,
            unique_id=caller.unique_id,
            waited=int(self._now - caller.entered_at) if waited is None else waited,
        )
        self._cdr.append(record)

    def _caller_leaves(self, queue: Queue, caller: Caller) -> None:
        """Take a caller out of the queue; an agent ringing for them stops ringing."""
        queue.waiting.remove(caller)
        if caller.offered_to is not None:
            agent = self.agents[caller.offered_to]
            if agent.call is not None and agent.call.unique_id == caller.unique_id:
                agent.call, agent.state = None, IDLE

    def _progress_calls(self) -> None:
        for agent in list(self.agents.values()):
            call = agent.call
            if agent.state == WRAPUP and agent.state_until is not None:
                if self._now >= agent.state_until:
                    agent.state, agent.state_until = IDLE, None
                continue
            if call is None or call.extension != agent.extension:
                continue  # idle, or the callee side of someone else's internal call
            if call.click and call.dialled_at is None:
                if call.agent_ring_until is not None and self._now >= call.agent_ring_until:
                    self._click_picked_up(agent, call)
            elif call.answered_at is None:
                if call.ring_until is not None and self._now >= call.ring_until:
                    self._ring_ends(agent, call)
            else:
                if call.transfer_at is not None and self._now >= call.transfer_at:
                    self._transfer(agent, call)
                    if agent.call is not call:
                        continue  # the new agent's turn comes with them
                if call.ends_at is not None and self._now >= call.ends_at:
                    self._finish_call(call, wrapup=True)

    def _ring_ends(self, agent: Agent, call: Call) -> None:
        if call.outcome != "answered":
            self._finish_call(call, wrapup=False)
            return
        if call.kind == "queue" and call.queue is not None:
            queue = self.queues[call.queue]
            caller = next((c for c in queue.waiting if c.unique_id == call.unique_id), None)
            if caller is not None:
                queue.waiting.remove(caller)
        median = (
            self.queues[call.queue].talk_median if call.queue is not None else rules.TALK_MEDIAN
        )
        talk = rules.talk_draw(self._rng, median)
        call.answered_at = self._now
        call.ends_at = self._now + talk
        if call.kind == "queue":
            share = rules.transfer_draw(self._rng)
            if share is not None:
                call.transfer_at = self._now + talk * share
        agent.state = TALKING
        if call.other_extension is not None:
            self.agents[call.other_extension].state = TALKING

    def _transfer(self, agent: Agent, call: Call, to: Agent | None = None) -> None:
        """The agent hands their answered queue call to a free colleague (a random one unless
        `to`); nobody free: they keep it. The call's row will name the colleague."""
        call.transfer_at = None
        scripted = to is not None
        if to is None:
            free = [a for a in self._queue_agents() if a is not agent and self._available(a)]
            if not free:
                return
            to = self._rng.choice(free)
        self._count_taken(agent, call)
        agent.call = None
        if scripted:
            agent.state, agent.state_until = IDLE, None
        else:
            agent.state, agent.state_until = WRAPUP, self._now + rules.wrapup_draw(self._rng)
        call.extension, call.callee, call.callee_name = to.extension, str(to.extension), to.name
        call.agent_unique_id = self._unique_id(self._now)
        to.call, to.state, to.state_until = call, TALKING, None

    def _count_taken(self, agent: Agent, call: Call) -> None:
        """The queue member who answered a call has taken it (once, even if they hand it on)."""
        if call.counted or call.queue is None:
            return
        call.counted = True
        member = self.queues[call.queue].members.get(agent.extension)
        if member is not None:
            member.calls_taken += 1
            member.last_call_at = self._now

    def _follow_shift(self, agent: Agent, on_shift: bool) -> None:
        if on_shift and agent.off_shift:
            agent.registered, agent.off_shift = True, False
        elif not on_shift and not agent.off_shift and self._free_to_leave(agent):
            agent.registered, agent.off_shift, agent.offline_until = False, True, None

    def _free_to_leave(self, agent: Agent) -> bool:
        """Agents finish their call and their break before their shift ends."""
        return self._available(agent) and agent.break_until is None

    def _agent_life(self) -> None:
        staffing = self._curve.staffing(self._now)
        for agent in self._queue_agents():
            if not agent.scripted:
                self._follow_shift(agent, agent.shift_rank < staffing)
            if agent.offline_until is not None and self._now >= agent.offline_until:
                agent.registered, agent.offline_until = True, None
            if agent.break_until is not None and self._now >= agent.break_until:
                self._end_break(agent)
            if not agent.registered or agent.state != IDLE or agent.break_until is not None:
                continue
            if self._rng.random() >= STEP / rules.IDLE_EVENT_EVERY:
                continue
            event = rules.idle_event_draw(self._rng)
            if event == "offline":
                agent.registered = False
                agent.offline_until = self._now + rules.offline_draw(self._rng)
            elif event == "break":
                self._start_break(agent, rules.break_draw(self._rng))
            else:
                self._own_call(agent)

    def _start_break(self, agent: Agent, seconds: float) -> None:
        agent.break_until = self._now + seconds
        agent.break_queues = []
        for queue in self.queues.values():
            member = queue.members.get(agent.extension)
            if member is not None and not member.paused:
                member.paused = True
                agent.break_queues.append(queue.number)

    def _end_break(self, agent: Agent) -> None:
        for number in agent.break_queues:
            member = self.queues[number].members.get(agent.extension)
            if member is not None:
                member.paused = False
        agent.break_until, agent.break_queues = None, []

    def _own_call(self, agent: Agent) -> None:
        """An idle agent phones a colleague (internal) or a customer (outgoing)."""
        colleagues = [
            a
            for a in self.agents.values()
            if a is not agent and a.registered and a.state == IDLE and a.call is None
        ]
        if rules.internal_draw(self._rng) and colleagues:
            other = self._rng.choice(colleagues)
            self._place_call(agent, str(other.extension), other)
        else:
            self._place_call(agent, external_number(self._rng), None)

    def _place_call(self, agent: Agent, destination: str, other: Agent | None) -> Call:
        outcome = rules.own_call_outcome(self._rng, internal=other is not None)
        call = Call(
            kind="internal" if other else "outgoing",
            unique_id=self._unique_id(self._now),
            extension=agent.extension,
            caller=str(agent.extension),
            caller_name=agent.name,
            callee=destination,
            callee_name=other.name if other else None,
            started_at=self._now,
            ring_until=self._now + rules.own_call_ring(self._rng, outcome),
            outcome=outcome,
            other_extension=other.extension if other else None,
        )
        agent.call, agent.state = call, RINGING
        if other is not None:
            other.call, other.state = call, RINGING
        return call

    def _click_picked_up(self, agent: Agent, call: Call) -> None:
        """Click-to-call: the agent's phone stopped ringing. Picked up: the PBX dials."""
        if call.outcome == "agent_missed":
            agent.call, agent.state = None, IDLE  # nothing was dialled: no call, no row
            return
        call.dialled_at = self._now
        if call.other_extension is not None:
            other = self.agents[call.other_extension]
            if self._available(other):
                other.call, other.state = call, RINGING
            else:
                call.outcome = "busy"
        call.ring_until = self._now + rules.own_call_ring(self._rng, call.outcome)

    def _dispatch(self) -> None:
        """Offer the longest-waiting callers to the longest-idle available members."""
        waiting = sorted(
            (c for q in self.queues.values() for c in q.waiting if c.offered_to is None),
            key=lambda c: (c.entered_at, c.unique_id),
        )
        for caller in waiting:
            queue = self.queues[caller.queue]
            available = [
                m
                for m in queue.members.values()
                if not m.paused and self._available(self.agents[m.extension])
            ]
            if not available:
                continue
            member = min(
                available,
                key=lambda m: (m.last_call_at if m.last_call_at is not None else -1, m.extension),
            )
            self._offer(queue, caller, self.agents[member.extension])

    @staticmethod
    def _available(agent: Agent) -> bool:
        return agent.registered and agent.state == IDLE and agent.call is None

    def _offer(self, queue: Queue, caller: Caller, agent: Agent) -> None:
        answers, ring = rules.offer_draw(self._rng)
        caller.offered_to = agent.extension
        agent.state = RINGING
        agent.call = Call(
            kind="queue",
            unique_id=caller.unique_id,
            extension=agent.extension,
            caller=caller.number,
            caller_name=caller.name,
            callee=str(agent.extension),
            callee_name=agent.name,
            started_at=self._now,
            ring_until=self._now + ring,
            outcome="answered" if answers else "missed",
            queue=queue.number,
            agent_unique_id=self._unique_id(self._now),
            queue_entered_at=caller.entered_at,
            recorded=rules.recorded_draw(self._rng),
        )

    def _finish_call(self, call: Call, *, wrapup: bool, scripted: bool = False) -> None:
        """End a call: free its agents, count it for the member, write its CDR row."""
        agent = self.agents[call.extension]
        parties = [agent]
        if call.other_extension is not None:
            parties.append(self.agents[call.other_extension])
        for party in parties:
            if party.call is call:
                party.call = None
                if wrapup and party is agent and call.kind == "queue":
                    party.state = WRAPUP
                    party.state_until = self._now + rules.wrapup_draw(self._rng)
                else:
                    party.state, party.state_until = IDLE, None
        if call.kind == "queue":
            self._finish_queue_call(agent, call, scripted=scripted)
        else:
            self._finish_own_call(call)

    def _finish_queue_call(self, agent: Agent, call: Call, *, scripted: bool) -> None:
        assert call.queue is not None
        queue = self.queues[call.queue]
        if call.answered_at is None:
            # Nobody answered: the caller goes back to waiting; the PBX may auto-pause the agent.
            caller = next((c for c in queue.waiting if c.unique_id == call.unique_id), None)
            if caller is not None:
                caller.offered_to = None
            if scripted or agent.break_until is not None:
                return
            pause = rules.autopause_draw(self._rng)
            if pause is not None:
                self._start_break(agent, pause)
            return
        self._count_taken(agent, call)
        entered = call.queue_entered_at if call.queue_entered_at is not None else call.started_at
        record = cdr.queue_answered(
            queue=queue.number,
            caller=call.caller,
            when=entered,
            unique_id=call.unique_id,
            agent=agent.extension,
            agent_name=agent.name,
            talk=int(self._now - call.answered_at),
            total=int(self._now - entered),
            recorded=call.recorded,
        )
        self._cdr.append(record)

    def _finish_own_call(self, call: Call) -> None:
        if call.click and call.dialled_at is None:
            return  # click-to-call the agent never picked up: nothing was dialled
        answered = call.answered_at is not None
        status = "answered" if answered else call.outcome
        if not answered and status == "answered":
            status = "missed"  # ended by script while still ringing
        record = cdr.own_call(
            caller=call.caller,
            caller_name=call.caller_name,
            callee=call.callee,
            callee_name=call.callee_name,
            when=call.started_at,
            unique_id=call.unique_id,
            status=status,
            talk=int(self._now - call.answered_at) if call.answered_at is not None else 0,
            total=int(self._now - call.started_at),
        )
        self._cdr.append(record)

    def _write_later(self, due: float, record: CdrRecord) -> None:
        """Write a row when its call ends (`due`), now if that has come."""
        if due <= self._now:
            self._cdr.append(record)
            return
        self._order += 1
        heapq.heappush(self._later, (due, self._order, record))

    def _write_due_rows(self) -> None:
        while self._later and self._later[0][0] <= self._now:
            self._cdr.append(heapq.heappop(self._later)[2])

    # ----------------------------------------------------------------------------- API reads

    def queue_list(self) -> list[dict[str, Any]]:
        with self.lock:
            return [wire.queue_entry(q.number, q.name) for q in self.queues.values()]

    def queue_status(self, queue: int) -> dict[str, Any] | None:
        with self.lock:
            found = self.queues.get(queue)
            if found is None:
                return None
            payload: dict[str, Any] = {"queue": str(found.number)}
            if self.config.current_calls_count:
                payload["current_calls_count"] = str(len(found.waiting))
            payload["members"] = [
                wire.member_entry(
                    m.extension,
                    m.calls_taken,
                    None if m.last_call_at is None else max(0, int(self._now - m.last_call_at)),
                    m.paused,
                    self._in_use(self.agents[m.extension]),
                )
                for m in found.members.values()
            ]
            payload["waiting_calls"] = [
                wire.waiting_entry(int(self._now - c.entered_at), c.unique_id, c.number, c.name)
                for c in found.waiting
            ]
            return payload

    @staticmethod
    def _in_use(agent: Agent) -> bool:
        return agent.call is not None

    def call_statistics(self) -> dict[str, Any]:
        with self.lock:
            legs: list[dict[str, Any]] = []
            for queue in self.queues.values():
                for caller in queue.waiting:
                    legs.append(self._queue_caller_leg(queue, caller.number, caller.name, caller))
            for agent in self.agents.values():
                call = agent.call
                if call is None or call.extension != agent.extension:
                    continue
                legs.extend(self._legs_of(call))
            return {"calls_active": str(len(legs)), "calls": legs}

    def _queue_caller_leg(
        self, queue: Queue, number: str, name: str | None, caller: Caller
    ) -> dict[str, Any]:
        return wire.call_leg(
            caller=number,
            caller_name=name,
            callee=str(queue.number),
            duration=int(self._now - caller.entered_at),
            unique_id=caller.unique_id,
            status="answered",  # the queue picked up the caller's leg
        )

    def _legs_of(self, call: Call) -> list[dict[str, Any]]:
        answered = call.answered_at is not None
        duration = int(self._now - call.answered_at) if call.answered_at is not None else 0
        status = "answered" if answered else "ringing"
        if call.kind != "queue":
            return [
                wire.call_leg(
                    caller=call.caller,
                    caller_name=call.caller_name,
                    callee=call.callee,
                    duration=duration,
                    unique_id=call.unique_id,
                    status=status,
                )
            ]
        legs = []
        if answered and call.queue is not None:
            entered = call.queue_entered_at if call.queue_entered_at is not None else 0.0
            legs.append(
                wire.call_leg(
                    caller=call.caller,
                    caller_name=call.caller_name,
                    callee=str(call.queue),
                    duration=int(self._now - entered),
                    unique_id=call.unique_id,
                    status="answered",
                )
            )
        legs.append(
            wire.call_leg(
                caller=call.caller,
                caller_name=call.caller_name,
                callee=call.callee,
                duration=duration,
                unique_id=call.agent_unique_id or call.unique_id,
                status=status,
                from_queue_unique_id=call.unique_id,
            )
        )
        return legs

    def cdr_rows(
        self,
        *,
        limit: int = CDR_PAGE_MAX,
        offset: int = 0,
        date_from: date | None = None,
        date_to: date | None = None,
        recordings_only: bool = False,
    ) -> list[dict[str, Any]]:
        """CDR rows oldest first by id, filtered by the local date of `when` (inclusive), at
        most 3000. Served from the per-day index: no walk over rows before `offset`."""
        limit = max(0, min(limit, CDR_PAGE_MAX))
        with self.lock:
            page = self._cdr.page(
                offset=max(0, offset),
                limit=limit,
                date_from=date_from,
                date_to=date_to,
                recordings_only=recordings_only,
            )
            return [record.to_json() for record in page]

    def cdr_find(self, *, id: int | None = None, unique_id: str | None = None) -> dict | None:
        with self.lock:
            record = self._cdr.find(id=id, unique_id=unique_id)
            return record.to_json() if record else None

    def recording(
        self, *, id: int | None = None, unique_id: str | None = None
    ) -> tuple[str, bytes] | None:
        """(file name, bytes) of a row's recording, or None (no such row or no recording)."""
        with self.lock:
            record = self._cdr.find(id=id, unique_id=unique_id)
            if record is None or not record.recording_file:
                return None
            name, key, seconds = record.recording_file, record.unique_id, record.duration
        return name, fake_mp3(key, seconds)

    def delete_recording(
        self, *, id: int | None = None, unique_id: str | None = None
    ) -> dict[str, Any] | None:
        with self.lock:
            record = self._cdr.find(id=id, unique_id=unique_id)
            if record is None:
                return None
            record.recording_file = ""
            self._cdr.recording_deleted(record)
            return record.to_json()

    def extension_list(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self._extension_json(a) for a in self.agents.values()]

    def extension_info(self, extension: int) -> dict[str, Any] | None:
        with self.lock:
            agent = self.agents.get(extension)
            return self._extension_json(agent) if agent else None

    @staticmethod
    def _extension_json(agent: Agent) -> dict[str, Any]:
        return wire.extension_entry(
            extension=agent.extension,
            name=agent.name,
            outboundcid=agent.outboundcid,
            phone_active=agent.phone_active,
            call_forwarding=agent.call_forwarding,
            registered=agent.registered,
            allowed_changes=agent.allowed_changes,
        )

    def outbounds(self) -> list[str]:
        with self.lock:
            return list(self.outbound_numbers)

    def data_list(self) -> dict[str, str]:
        with self.lock:
            return dict(self.data)

    # ----------------------------------------------------------------------------- API actions

    def queue_action(self, action: str, queue: str, extension: str) -> tuple[int, str]:
        """Body (code, detail) of a queue member action; it really changes the centre."""
        with self.lock:
            found = self.queues.get(int(queue)) if queue.isdigit() else None
            if found is None:
                return 401, "No such queue"
            agent = self.agents.get(int(extension)) if extension.isdigit() else None
            if agent is None:
                return 402, "Unknown status"
            member = found.members.get(agent.extension)
            if action == "add":
                if member is not None:
                    return 400, "Already there"
                found.members[agent.extension] = Member(agent.extension)
                found.members = dict(sorted(found.members.items()))
                return 200, "Added to queue"
            if member is None:
                return 400, "Not there"
            if found.number in agent.break_queues:
                agent.break_queues.remove(found.number)  # a supervisor took over from the break
            if action == "remove":
                del found.members[agent.extension]
                return 200, "Removed from queue"
            member.paused = action == "pause"
            return 200, "Paused" if member.paused else "Unpaused"

    def click_to_call(self, caller: str, destination: str) -> None:
        """Ring `caller`'s extension; once picked up, dial `destination` (module docstring).

        Logged whatever happens; an unknown, unregistered or busy extension or an invalid
        number places no call (the PBX says "Call queued" regardless).
        """
        with self.lock:
            entry: dict[str, Any] = {
                "at": self._now,
                "caller": caller,
                "destination": destination,
                "unique_id": None,
            }
            self._call_log.append(entry)
            agent = self.agents.get(int(caller)) if _DIGITS_RE.match(caller) else None
            outcome = self._call_outcomes.get(destination)
            dialable = bool(_DIGITS_RE.match(destination)) and outcome != "invalid"
            if agent is None or not self._available(agent) or not dialable:
                return
            if destination == str(agent.extension):
                return
            other = next((a for a in self.agents.values() if str(a.extension) == destination), None)
            if outcome is None:
                outcome = rules.own_call_outcome(self._rng, internal=other is not None)
            picks_up = (
                rules.AGENT_NO_ANSWER_SECONDS
                if outcome == "agent_missed"
                else rules.agent_ring_draw(self._rng)
            )
            call = Call(
                kind="internal" if other else "outgoing",
                unique_id=self._unique_id(self._now),
                extension=agent.extension,
                caller=str(agent.extension),
                caller_name=agent.name,
                callee=destination,
                callee_name=other.name if other else None,
                started_at=self._now,
                ring_until=None,
                outcome=outcome,
                other_extension=other.extension if other else None,
                click=True,
                agent_ring_until=self._now + picks_up,
            )
            agent.call, agent.state = call, RINGING
            entry["unique_id"] = call.unique_id

    def advanced_call(self, profile: str | None, fields: dict[str, list[str]]) -> None:
        with self.lock:
            self._advanced.append((profile, fields))

    def phone_set(self, extension: int, active: bool) -> bool:
        """Activate/deactivate VIPTel Phone; False = the PBX could not (HTTP 500)."""
        with self.lock:
            agent = self.agents.get(extension)
            if agent is None or not agent.phone_capable:
                return False
            agent.phone_active = active
            return True

    def extension_update(self, extension: int, changes: dict[str, str]) -> dict[str, Any] | str:
        """Apply changes; returns the changed values, or a reason string when refused (505)."""
        with self.lock:
            agent = self.agents[extension]
            applied: dict[str, Any] = {}
            for key, value in changes.items():
                if key not in agent.allowed_changes:
                    return f"{key} may not be changed on this extension"
                if key == "name":
                    if not _NAME_RE.match(value) or len(value) > 80:
                        return "name may contain only letters, digits and spaces"
                    applied["name"] = value
                elif key == "call_forwarding":
                    if value.lower() in ("false", "0", ""):
                        applied["call_forwarding"] = None
                    elif _DIGITS_RE.match(value):
                        applied["call_forwarding"] = value
                    else:
                        return "call_forwarding must be a number or false"
                elif key == "outboundcid":
                    if value and value not in self.outbound_numbers:
                        return "outboundcid is not one of the allowed numbers"
                    applied["outboundcid"] = value
            for key, value in applied.items():
                setattr(agent, key, value)
            if "call_forwarding" in applied:
                applied["call_forwarding"] = applied["call_forwarding"] or False
            return applied

    def data_create(self, key: str, value: str) -> str | None:
        """None when saved, else why not (505)."""
        with self.lock:
            if not key or len(key) > 250:
                return "key must be 1 to 250 characters"
            if key in self.data:
                return "key already exists"
            self.data[key] = value
            return None

    def data_update(self, key: str, value: str) -> bool:
        with self.lock:
            if key not in self.data:
                return False
            self.data[key] = value
            return True

    def data_delete(self, key: str) -> None:
        with self.lock:
            self.data.pop(key, None)

    def data_bulk(self, pairs: list[tuple[str, str]]) -> str | None:
        """Insert or update many; None when saved, else why not (505; nothing is saved)."""
        with self.lock:
            for key, _ in pairs:
                if not key or len(key) > 250:
                    return "key must be 1 to 250 characters"
            for key, value in pairs:
                self.data[key] = value
            return None

    def data_flush(self) -> None:
        with self.lock:
            self.data.clear()

    # ----------------------------------------------------------------------------- scripting

    def now(self) -> float:
        with self.lock:
            return self._now

    def advance(self, seconds: float, *, live: bool = True) -> None:
        """Step simulated time by hand; live=False moves only the clock."""
        with self.lock:
            self._steps(int(seconds / STEP), live=live)

    def pause_autopilot(self) -> None:
        with self.lock:
            self._autopilot = False

    def resume_autopilot(self) -> None:
        with self.lock:
            self._autopilot = True

    @property
    def autopilot(self) -> bool:
        with self.lock:
            return self._autopilot

    def set_fault(self, mode: str | None) -> None:
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; one of {FAULT_MODES}")
        with self.lock:
            self.fault = mode

    def block_ip(self, ip: str, seconds: float) -> None:
        self.limiter.block(ip, seconds)

    def unblock_all(self) -> None:
        self.limiter.reset()

    def queue_numbers(self) -> list[int]:
        with self.lock:
            return list(self.queues)

    def extensions(self) -> list[int]:
        with self.lock:
            return list(self.agents)

    def members(self, queue: int) -> list[int]:
        with self.lock:
            return list(self._queue(queue).members)

    def member_state(self, queue: int, extension: int) -> dict[str, Any]:
        with self.lock:
            member = self._member(queue, extension)
            agent = self.agents[extension]
            return {
                "extension": extension,
                "calls_taken": member.calls_taken,
                "last_call_at": member.last_call_at,
                "paused": member.paused,
                "in_use": self._in_use(agent),
                "registered": agent.registered,
                "state": agent.state,
            }

    def waiting(self, queue: int) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "unique_id": c.unique_id,
                    "caller": c.number,
                    "caller_name": c.name,
                    "wait_time": int(self._now - c.entered_at),
                    "offered_to": c.offered_to,
                }
                for c in self._queue(queue).waiting
            ]

    def add_waiting_caller(
        self,
        queue: int,
        caller: str | None = None,
        caller_name: str | None = None,
        wait_time: int = 0,
    ) -> str:
        """A caller who has waited `wait_time` seconds so far; returns their unique_id."""
        with self.lock:
            found = self._queue(queue)
            number = caller if caller is not None else external_number(self._rng)
            entered = self._now - wait_time
            caller_obj = Caller(
                self._unique_id(entered), number, caller_name, found.number, entered, None
            )
            found.waiting.append(caller_obj)
            found.waiting.sort(key=lambda c: c.entered_at)
            return caller_obj.unique_id

    def clear_waiting(self, queue: int) -> None:
        with self.lock:
            found = self._queue(queue)
            for caller in list(found.waiting):
                self._caller_leaves(found, caller)

    def abandon_caller(self, unique_id: str, after: float | None = None) -> None:
        """A waiting caller hangs up now (a missed CDR row). The row's wait is their time in the
        queue so far, or `after` seconds when given (e.g. 2 for a short abandon)."""
        with self.lock:
            for queue in self.queues.values():
                for caller in queue.waiting:
                    if caller.unique_id == unique_id:
                        self._abandon(queue, caller, None if after is None else int(after))
                        return
            raise KeyError(f"no waiting caller {unique_id}")

    def set_registered(self, extension: int, registered: bool) -> None:
        with self.lock:
            agent = self._agent(extension)
            agent.registered = registered
            # Scripted: the autopilot will not change it back (no shifts, no network drops).
            agent.offline_until, agent.off_shift, agent.scripted = None, False, True

    def set_paused(self, queue: int, extension: int, paused: bool) -> None:
        with self.lock:
            self._member(queue, extension).paused = paused
            agent = self._agent(extension)
            if queue in agent.break_queues:
                agent.break_queues.remove(queue)

    def start_call(self, queue: int, extension: int, caller: str | None = None) -> str:
        """The agent answers a queue call now; returns the caller leg's unique_id."""
        with self.lock:
            found = self._queue(queue)
            agent = self._agent(extension)
            if agent.call is not None:
                self._finish_call(agent.call, wrapup=False, scripted=True)
            waiting = [c for c in found.waiting if caller is None or c.number == caller]
            if waiting:
                person = waiting[0]
                self._caller_leaves(found, person)
            else:
                number = caller if caller is not None else external_number(self._rng)
                person = Caller(self._unique_id(self._now), number, None, queue, self._now, None)
            agent.state = TALKING
            agent.state_until = None
            agent.call = Call(
                kind="queue",
                unique_id=person.unique_id,
                extension=agent.extension,
                caller=person.number,
                caller_name=person.name,
                callee=str(agent.extension),
                callee_name=agent.name,
                started_at=self._now,
                ring_until=None,
                outcome="answered",
                queue=found.number,
                agent_unique_id=self._unique_id(self._now),
                queue_entered_at=person.entered_at,
                answered_at=self._now,
                ends_at=None,
            )
            return person.unique_id

    def end_call(self, extension: int) -> None:
        """The agent's current call ends now (its CDR row is written); the agent is idle."""
        with self.lock:
            agent = self._agent(extension)
            if agent.call is None:
                raise KeyError(f"extension {extension} has no call")
            self._finish_call(agent.call, wrapup=False, scripted=True)
            agent.state, agent.state_until = IDLE, None

    def transfer_call(self, extension: int, to_extension: int) -> None:
        """The agent hands the queue call they are talking on to `to_extension` (free and
        registered), who talks until `end_call(to_extension)`."""
        with self.lock:
            agent, to = self._agent(extension), self._agent(to_extension)
            call = agent.call
            if (
                call is None
                or call.kind != "queue"
                or call.answered_at is None
                or call.extension != extension
            ):
                raise KeyError(f"extension {extension} is not talking on a queue call")
            if to is agent or not self._available(to):
                raise ValueError(f"extension {to_extension} is not free to take a call")
            self._transfer(agent, call, to)

    def call_create_log(self) -> list[dict[str, Any]]:
        """Every call/create request, oldest first: at, caller, destination, unique_id."""
        with self.lock:
            return [dict(entry) for entry in self._call_log]

    def set_call_outcome(self, number: str, outcome: str | None) -> None:
        """How click-to-call to `number` ends from now on (None: random again)."""
        if outcome not in CALL_OUTCOMES:
            raise ValueError(f"unknown call outcome {outcome!r}; one of {CALL_OUTCOMES}")
        with self.lock:
            if outcome is None:
                self._call_outcomes.pop(number, None)
            else:
                self._call_outcomes[number] = outcome

    def cdr_count(self) -> int:
        with self.lock:
            return len(self._cdr)

    def cdr_rows_for(self, day: date) -> int:
        """How many rows have a `when` on this local date (what a date filter returns)."""
        with self.lock:
            return self._cdr.count_day(day)

    def cdr_append(
        self,
        *,
        when: float | datetime,
        caller: str = "00421900000000",
        received: str | None = None,
        destination: str | None = None,
        type: str = "incoming",
        application: str = "queue",
        status: str = "missed",
        duration: int = 0,
        complete_duration: int | None = None,
        recorded: bool = False,
        unique_id: str | None = None,
    ) -> dict[str, Any]:
        """Write one row now, as given, with the next id: e.g. a late row whose `when` is
        earlier than rows already written. `when` is a Unix time or a datetime (naive = PBX
        local time). Defaults: the first queue receives it, destination = received,
        complete_duration = duration, names of extensions filled in, others null."""
        if isinstance(when, datetime):
            when = (when if when.tzinfo else when.replace(tzinfo=wire.TZ)).timestamp()
        with self.lock:
            received = received if received is not None else str(min(self.queues))
            destination = destination if destination is not None else received
            unique_id = unique_id if unique_id is not None else self._unique_id(when)
            recording = (
                wire.recording_name(int(received), caller, when, unique_id)
                if recorded and received.isdigit()
                else ""
            )
            record = CdrRecord(
                type=type,
                when=when,
                caller=caller,
                caller_name=self._extension_name(caller),
                received=received,
                received_name=self._extension_name(received),
                destination=destination,
                destination_name=self._extension_name(destination),
                duration=duration,
                application=application,
                status=status,
                recording_file=recording,
                unique_id=unique_id,
                complete_duration=duration if complete_duration is None else complete_duration,
            )
            return self._cdr.append(record).to_json()

    def _extension_name(self, number: str) -> str | None:
        agent = self.agents.get(int(number)) if _DIGITS_RE.match(number) else None
        return agent.name if agent is not None and str(agent.extension) == number else None

    def cdr_delete_rows(self, *, ids: list[int] | None = None, day: date | None = None) -> int:
        """Delete rows for good (these ids, and/or every row of that local date); returns how
        many went. Later rows keep their ids; date-filtered pages move up."""
        with self.lock:
            doomed = set(ids or ())
            if day is not None:
                doomed.update(record.id for record in self._cdr.day_rows(day))
            return self._cdr.delete(doomed)

    def cdr_shift(self, day: date, rows: int) -> None:
        """Move that day's rows within its date-filtered pages: `rows` > 0 missed calls appear
        before its first row (taking its id; every later row's id grows by `rows`), `rows` < 0
        its first rows are deleted."""
        with self.lock:
            existing = self._cdr.day_rows(day)
            if rows < 0:
                self._cdr.delete(record.id for record in existing[:-rows])
                return
            if rows == 0:
                return
            if not existing:
                raise KeyError(f"no call records on {day}")
            first = existing[0]
            queue = min(self.queues)
            inserted = [
                cdr.queue_abandoned(
                    queue=queue,
                    caller=external_number(self._rng),
                    when=first.when,
                    unique_id=self._unique_id(first.when),
                    waited=10,
                )
                for _ in range(rows)
            ]
            self._cdr.insert_before(first, inserted)

    def advanced_calls(self) -> list[tuple[str | None, dict[str, list[str]]]]:
        with self.lock:
            return list(self._advanced)

    def snapshot(self) -> dict[str, Any]:
        """Everything observable, for determinism checks and debugging."""
        with self.lock:
            return {
                "now": self._now,
                "queues": {n: self.queue_status(n) for n in self.queues},
                "calls": self.call_statistics(),
                "extensions": self.extension_list(),
                "cdr": [r.to_json() for r in self._cdr],
                "later": [(due, r.to_json()) for due, _, r in sorted(self._later)],
                "retries": sorted(self._retries),
            }

    def _queue(self, queue: int) -> Queue:
        try:
            return self.queues[queue]
        except KeyError:
            raise KeyError(f"no queue {queue}") from None

    def _agent(self, extension: int) -> Agent:
        try:
            return self.agents[extension]
        except KeyError:
            raise KeyError(f"no extension {extension}") from None

    def _member(self, queue: int, extension: int) -> Member:
        member = self._queue(queue).members.get(extension)
        if member is None:
            raise KeyError(f"extension {extension} is not a member of queue {queue}")
        return member

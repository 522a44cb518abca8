"""The living call centre behind the simulated PBX.

Queues (100, 101, ...) with member agents (201, 202, ...; 200 is a reception desk outside the
queues). Callers arrive per queue as a Poisson process whose rate follows a daily curve by
Bratislava hour plus random bursts, wait, are offered to the longest-idle available member
(ringing), are answered, talk (log-normal durations) and leave a CDR row; the agent wraps up.
Callers whose patience runs out abandon (a missed CDR row); full queues answer busy; agents take
breaks (pause themselves), drop off the network and come back, and make internal and outgoing
calls. Staffing follows the hour (agents log in and out with their shifts; at night one agent per
queue stays). Today's earlier traffic is pre-populated, so the CDR is never empty.

Time is simulated: `now()` is a Unix time that advances in fixed one-second steps, driven by a
ticker thread at `speed` simulated seconds per real second while the autopilot runs. Everything
is deterministic for a seed and a `start_time`. All state is guarded by one lock; every public
method takes it, so HTTP handlers and tests always see consistent snapshots.

Scripting API for tests (thread-safe):

- `add_waiting_caller(queue, caller=None, caller_name=None, wait_time=0) -> unique_id` — a caller
  who waits until answered or cleared (never abandons).
- `set_registered(extension, registered)`, `set_paused(queue, extension, paused)`.
- `start_call(queue, extension, caller=None) -> unique_id` — the agent answers a queue call: the
  longest-waiting caller of that queue (or `caller`, or a new one); two legs in call/statistics.
  Scripted calls last until `end_call(extension)`, which writes the answered CDR row.
- `clear_waiting(queue)` (no CDR rows), `abandon_caller(unique_id)` (writes a missed row).
- `queue_numbers() -> list[int]`, `members(queue) -> list[int]`, `extensions() -> list[int]`,
  `member_state(queue, extension) -> dict`, `waiting(queue) -> list[dict]`.
- `set_fault(mode)` with mode None, "html500", "timeout", "truncated", "down", "forbidden".
- `block_ip(ip, seconds)`, `unblock_all()`.
- `pause_autopilot()`, `resume_autopilot()`; `advance(seconds, live=True)` steps the model by
  hand (live=False moves only the clock: waits and talk times grow, nothing else happens).
- `now() -> float` (simulated Unix time), `snapshot() -> dict` (the whole state, for comparisons),
  `cdr_count() -> int`, `advanced_calls() -> list`.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from . import wire
from .audio import fake_mp3
from .config import SimulatorConfig
from .limiter import RateLimiter
from .names import external_number, person_name, queue_name

STEP = 1.0  # simulated seconds per model step
TICK = 0.1  # real seconds between ticker wake-ups
MAX_STEPS_PER_TICK = 3_000  # when the machine cannot keep up, simulated time runs slower

FAULT_MODES = (None, "html500", "timeout", "truncated", "down", "forbidden")
CDR_PAGE_MAX = 3000

FIRST_QUEUE = 100
RECEPTION = 200
FIRST_AGENT = 201

# Relative call volume by Bratislava hour (normalised to a mean of 1 below): quiet nights,
# a morning peak, a lunch dip and an afternoon peak.
_HOURLY = (
    0.30, 0.28, 0.26, 0.26, 0.28, 0.35, 0.55, 0.95, 1.55, 1.95, 2.05, 1.85,
    1.35, 1.55, 1.75, 1.55, 1.25, 0.95, 0.70, 0.55, 0.45, 0.40, 0.35, 0.32,
)  # fmt: skip
HOURLY_WEIGHT = tuple(w * 24 / sum(_HOURLY) for w in _HOURLY)

# Behaviour of people, in simulated seconds.
RING_SECONDS = (2.0, 7.0)
NO_ANSWER_SECONDS = 15.0
ANSWER_PROBABILITY = 0.93
TALK_MEDIAN, TALK_SIGMA, TALK_BOUNDS = 100.0, 0.7, (15.0, 1800.0)
WRAPUP_SECONDS = (5.0, 30.0)
PATIENCE_MEDIAN, PATIENCE_SIGMA = 150.0, 0.8
QUEUE_TIMEOUT = 480.0  # then the caller is sent to voicemail or cut off ("hangup")
VOICEMAIL_SHARE = 0.5  # of callers reaching the queue timeout
MAX_WAITING = 20  # more callers than this get busy
PLAYBACK_SHARE = 0.04  # callers who hear the greeting and hang up
RECORDED_SHARE = 0.6
BREAK_EVERY, BREAK_MEDIAN = 50 * 60.0, 5 * 60.0
AUTOPAUSE_ON_NO_ANSWER = 0.5
OFFLINE_EVERY, OFFLINE_SECONDS = 4 * 3600.0, (120.0, 900.0)
OWN_CALL_EVERY = 45 * 60.0
STAFFING_FACTOR, MIN_STAFFING = 1.4, 0.05  # night shifts: the first agent of each queue
BURST_EVERY, BURST_SECONDS, BURST_FACTOR = 60 * 60.0, (120.0, 420.0), (2.0, 3.5)

IDLE, RINGING, TALKING, WRAPUP = "idle", "ringing", "talking", "wrapup"
_NAME_RE = re.compile(r"^[^\W_]+(?: [^\W_]+)*$")
_DIGITS_RE = re.compile(r"^\d{1,20}$")
EXTENSION_FIELDS = ("name", "call_forwarding", "outboundcid")


@dataclass
class Agent:
    extension: int
    name: str
    registered: bool
    outboundcid: str | None
    phone_active: bool
    phone_capable: bool
    call_forwarding: str | None
    allowed_changes: list[str]
    state: str = IDLE
    state_until: float | None = None  # end of wrap-up
    call: Call | None = None
    break_until: float | None = None
    break_queues: list[int] = field(default_factory=list)
    offline_until: float | None = None  # set when the autopilot unregistered the agent
    shift_rank: float = 0.0  # on shift while the hour's staffing level is above this
    off_shift: bool = False  # logged out because the shift ended
    scripted: bool = False  # registration set by a script: the autopilot leaves it alone


@dataclass
class Member:
    extension: int
    calls_taken: int = 0
    last_call_at: float | None = None
    paused: bool = False


@dataclass
class Caller:
    unique_id: str
    number: str
    name: str | None
    queue: int
    entered_at: float
    patience: float | None  # None: a scripted caller who never gives up
    offered_to: int | None = None


@dataclass
class Queue:
    number: int
    name: str
    members: dict[int, Member] = field(default_factory=dict)
    waiting: list[Caller] = field(default_factory=list)
    burst_until: float | None = None
    burst_factor: float = 1.0
    load: float = 1.0  # share of the average call rate (queues differ; their mean is 1)
    talk_median: float = TALK_MEDIAN  # technical support talks longer than sales


@dataclass
class Call:
    """One conversation an agent takes part in (a queue call, an internal or an outgoing one)."""

    kind: str  # "queue" | "internal" | "outgoing"
    unique_id: str
    extension: int  # the agent who owns the call
    caller: str
    caller_name: str | None
    callee: str
    callee_name: str | None
    started_at: float
    ring_until: float | None  # None: rings until scripted
    outcome: str  # "answered" | "missed" | "busy"
    queue: int | None = None
    agent_unique_id: str | None = None  # the agent leg of a queue call
    queue_entered_at: float | None = None
    other_extension: int | None = None  # the callee of an internal call
    answered_at: float | None = None
    ends_at: float | None = None  # None once answered: talks until end_call()
    recorded: bool = False


@dataclass
class CdrRecord:
    id: int
    type: str
    when: float
    caller: str
    caller_name: str | None
    received: str
    received_name: str | None
    destination: str
    destination_name: str | None
    duration: int
    application: str
    status: str
    recording_file: str
    unique_id: str
    complete_duration: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "when": wire.cdr_when(self.when),
            "caller": self.caller,
            "caller_name": self.caller_name,
            "received": self.received,
            "received_name": self.received_name,
            "destination": self.destination,
            "destination_name": self.destination_name,
            "duration": str(self.duration),
            "status": self.status,
            "application": self.application,
            "recording_file": self.recording_file,
            "unique_id": self.unique_id,
            "complete_duration": str(self.complete_duration),
        }


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
        self.queues: dict[int, Queue] = {}
        self.agents: dict[int, Agent] = {}
        self.outbound_numbers = ["0233001100", "0233001101", "0233001150", "0233001199"]
        self.data: dict[str, str] = {}
        self._cdr: list[CdrRecord] = []
        self._cdr_by_id: dict[int, CdrRecord] = {}
        self._advanced: list[tuple[str | None, dict[str, list[str]]]] = []
        self._callers: list[tuple[str, str | None]] = []
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
            queue.talk_median = TALK_MEDIAN * rng.uniform(0.85, 1.3)
        for index, agent in enumerate(a for a in self.agents.values() if a.extension != RECEPTION):
            # The first agent of each queue works every shift, so no queue is ever unstaffed.
            agent.shift_rank = (
                rng.uniform(0, 0.05) if index < len(numbers) else rng.uniform(0.05, 1)
            )
            if not agent.registered:
                agent.offline_until = self._now + rng.uniform(300, 7200)
        if self.config.autopilot:
            staffing = self._staffing(self._now)
            for agent in self.agents.values():
                if agent.extension != RECEPTION and agent.shift_rank >= staffing:
                    agent.registered, agent.off_shift, agent.offline_until = False, True, None
        for _ in range(300):
            name = person_name(rng) if rng.random() < 0.35 else None
            self._callers.append((external_number(rng), name))

    def _populate_history(self, *, until: float) -> None:
        """Synthetic CDR rows for today (and earlier days) up to `until`; members' counters."""
        days = self.config.history_days
        if days <= 0:
            return
        rng = self._history_rng
        today = wire.local_time(until).date()
        rows: list[dict[str, Any]] = []
        for offset in range(days - 1, -1, -1):
            day = today - timedelta(days=offset)
            start = datetime(day.year, day.month, day.day, tzinfo=wire.TZ).timestamp()
            end = min(until, start + 86400)
            for queue in self.queues.values():
                rows.extend(self._history_queue_calls(rng, queue, start, end))
            rows.extend(self._history_own_calls(rng, start, end))
        rows = [row for row in rows if row["end"] <= until]
        rows.sort(key=lambda row: row["when"])
        for row in rows:
            unique_id = self._unique_id(row["when"])
            member = row.pop("member", None)
            end = row.pop("end")
            queue_number = row.pop("queue", None)
            recorded = row.pop("recorded", False)
            row["recording_file"] = (
                wire.recording_name(queue_number, row["caller"], row["when"], unique_id)
                if recorded
                else ""
            )
            self._write_cdr(unique_id=unique_id, **row)
            if member is not None and wire.local_time(row["when"]).date() == today:
                member.calls_taken += 1
                member.last_call_at = end

    def _history_queue_calls(
        self, rng: random.Random, queue: Queue, start: float, end: float
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        peak = max(HOURLY_WEIGHT) * self.config.call_rate * queue.load / 60.0
        members = list(queue.members.values())
        if peak <= 0:
            return rows
        t = start
        while True:
            t += rng.expovariate(peak)
            if t >= end:
                return rows
            if rng.random() * max(HOURLY_WEIGHT) > self._curve(t):
                continue  # thinning: a Poisson process with the day's varying rate
            number, _ = rng.choice(self._callers)
            roll = rng.random()
            base = {
                "type": "incoming",
                "when": t,
                "caller": number,
                "caller_name": None,
                "received": str(queue.number),
                "received_name": None,
                "queue": queue.number,
            }
            if roll < PLAYBACK_SHARE:
                heard = rng.randint(3, 15)
                rows.append(self._queue_row(base, "playback", "answered", heard, heard, t + heard))
            elif roll < 0.06:
                rows.append(self._queue_row(base, "queue", "busy", 0, 0, t))
            elif roll < 0.18 or not members:
                waited = int(rng.uniform(8, 240))
                rows.append(self._queue_row(base, "queue", "missed", 0, waited, t + waited))
            elif roll < 0.20:
                message = rng.randint(8, 45) if rng.random() < VOICEMAIL_SHARE else 0
                total = int(QUEUE_TIMEOUT) + message
                application, status = ("voicemail", "answered") if message else ("hangup", "missed")
                rows.append(self._queue_row(base, application, status, message, total, t + total))
            else:
                member = rng.choice(members)
                agent = self.agents[member.extension]
                waited = int(rng.expovariate(1 / 35.0) + rng.uniform(*RING_SECONDS))
                talk = self._talk_seconds(rng, queue.talk_median)
                row = self._queue_row(
                    base, "queue", "answered", talk, waited + talk, t + waited + talk
                )
                row.update(
                    destination=str(agent.extension),
                    destination_name=agent.name,
                    member=member,
                    recorded=rng.random() < RECORDED_SHARE,
                )
                rows.append(row)

    @staticmethod
    def _queue_row(
        base: dict[str, Any], application: str, status: str, duration: int, total: int, end: float
    ) -> dict[str, Any]:
        return {
            **base,
            "destination": base["received"],
            "destination_name": None,
            "duration": duration,
            "application": application,
            "status": status,
            "complete_duration": total,
            "end": end,
        }

    def _history_own_calls(
        self, rng: random.Random, start: float, end: float
    ) -> list[dict[str, Any]]:
        """Agents' internal and outgoing calls during office hours (08:00-17:00)."""
        rows: list[dict[str, Any]] = []
        agents = [a for a in self.agents.values() if a.extension != RECEPTION]
        office_from, office_to = start + 8 * 3600, min(end, start + 17 * 3600)
        for agent in agents:
            t = office_from
            while True:
                t += rng.expovariate(1 / OWN_CALL_EVERY)
                if t >= office_to:
                    break
                internal = rng.random() < 0.4
                other = rng.choice(agents) if internal else None
                callee = str(other.extension) if other else external_number(rng)
                status = self._own_call_outcome(rng, internal=internal)
                ring = int(rng.uniform(3, 20))
                talk = self._talk_seconds(rng) if status == "answered" else 0
                rows.append(
                    {
                        "type": "outgoing",
                        "when": t,
                        "caller": str(agent.extension),
                        "caller_name": agent.name,
                        "received": callee,
                        "received_name": other.name if other else None,
                        "destination": callee,
                        "destination_name": other.name if other else None,
                        "duration": talk,
                        "application": "call",
                        "status": status,
                        "complete_duration": ring + talk,
                        "end": t + ring + talk,
                    }
                )
        return rows

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
        self._arrivals()
        self._abandonments()
        self._progress_calls()
        self._agent_life()
        self._dispatch()

    def _curve(self, epoch: float) -> float:
        if not self.config.daily_curve:
            return 1.0
        local = wire.local_time(epoch)
        hour = local.hour + local.minute / 60.0
        low = int(hour)
        frac = hour - low
        return HOURLY_WEIGHT[low] * (1 - frac) + HOURLY_WEIGHT[(low + 1) % 24] * frac

    def _unique_id(self, epoch: float) -> str:
        self._seq += 1
        return f"{int(epoch)}.{self._seq}"

    @staticmethod
    def _own_call_outcome(rng: random.Random, *, internal: bool) -> str:
        """How an agent's own call ends; some external numbers (premium, abroad) are barred."""
        if internal:
            return rng.choices(("answered", "busy", "missed"), (0.85, 0.05, 0.10))[0]
        outcomes = ("answered", "busy", "missed", "unauthorized")
        return rng.choices(outcomes, (0.76, 0.08, 0.14, 0.02))[0]

    @staticmethod
    def _talk_seconds(rng: random.Random, median: float = TALK_MEDIAN) -> int:
        talk = rng.lognormvariate(math.log(median), TALK_SIGMA)
        return int(min(max(talk, TALK_BOUNDS[0]), TALK_BOUNDS[1]))

    # ----------------------------------------------------------------------------- the model

    def _poisson(self, lam: float) -> int:
        limit, count, product = math.exp(-lam), 0, self._rng.random()
        while product > limit:
            count += 1
            product *= self._rng.random()
        return count

    def _arrivals(self) -> None:
        rate = self.config.call_rate / 60.0 * self._curve(self._now) * STEP
        for queue in self.queues.values():
            self._update_burst(queue)
            for _ in range(self._poisson(rate * queue.load * queue.burst_factor)):
                self._caller_arrives(queue)

    def _update_burst(self, queue: Queue) -> None:
        if queue.burst_until is not None and self._now >= queue.burst_until:
            queue.burst_until, queue.burst_factor = None, 1.0
        starts = self.config.bursts and queue.burst_until is None
        if starts and self._rng.random() < STEP / BURST_EVERY:
            queue.burst_until = self._now + self._rng.uniform(*BURST_SECONDS)
            queue.burst_factor = self._rng.uniform(*BURST_FACTOR)

    def _caller_arrives(self, queue: Queue) -> None:
        number, name = self._rng.choice(self._callers)
        unique_id = self._unique_id(self._now)
        if self._rng.random() < PLAYBACK_SHARE:
            heard = self._rng.randint(3, 15)
            self._write_queue_cdr(queue, number, unique_id, "playback", "answered", heard, heard)
            return
        if len(queue.waiting) >= MAX_WAITING:
            self._write_queue_cdr(queue, number, unique_id, "queue", "busy", 0, 0)
            return
        patience = self._rng.lognormvariate(math.log(PATIENCE_MEDIAN), PATIENCE_SIGMA)
        queue.waiting.append(Caller(unique_id, number, name, queue.number, self._now, patience))

    def _abandonments(self) -> None:
        for queue in self.queues.values():
            for caller in list(queue.waiting):
                waited = self._now - caller.entered_at
                if caller.patience is None:
                    continue
                if waited >= QUEUE_TIMEOUT:
                    self._queue_timeout(queue, caller)
                elif waited >= caller.patience:
                    self._abandon(queue, caller)

    def _queue_timeout(self, queue: Queue, caller: Caller) -> None:
        """Waited too long: half leave a voicemail, the others are cut off."""
        self._caller_leaves(queue, caller)
        waited = int(self._now - caller.entered_at)
        if self._rng.random() < VOICEMAIL_SHARE:
            message = self._rng.randint(8, 45)
            application, status = "voicemail", "answered"
        else:
            message, application, status = 0, "hangup", "missed"
        self._write_queue_cdr(
            queue,
            caller.number,
            caller.unique_id,
            application,
            status,
            message,
            waited + message,
            when=caller.entered_at,
        )

    def _abandon(self, queue: Queue, caller: Caller) -> None:
        self._caller_leaves(queue, caller)
        waited = int(self._now - caller.entered_at)
        self._write_queue_cdr(
            queue, caller.number, caller.unique_id, "queue", "missed", 0, waited, caller.entered_at
        )

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
            if call.answered_at is None:
                if call.ring_until is not None and self._now >= call.ring_until:
                    self._ring_ends(agent, call)
            elif call.ends_at is not None and self._now >= call.ends_at:
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
        median = self.queues[call.queue].talk_median if call.queue is not None else TALK_MEDIAN
        call.answered_at = self._now
        call.ends_at = self._now + self._talk_seconds(self._rng, median)
        agent.state = TALKING
        if call.other_extension is not None:
            self.agents[call.other_extension].state = TALKING

    def _staffing(self, epoch: float) -> float:
        """Share of agents on shift: staffing follows the expected call volume of the hour."""
        if not self.config.daily_curve:
            return 1.0
        level = STAFFING_FACTOR * self._curve(epoch) / max(HOURLY_WEIGHT)
        return min(1.0, max(MIN_STAFFING, level))

    def _follow_shift(self, agent: Agent, on_shift: bool) -> None:
        if on_shift and agent.off_shift:
            agent.registered, agent.off_shift = True, False
        elif not on_shift and not agent.off_shift and self._free_to_leave(agent):
            agent.registered, agent.off_shift, agent.offline_until = False, True, None

    def _free_to_leave(self, agent: Agent) -> bool:
        """Agents finish their call and their break before their shift ends."""
        return self._available(agent) and agent.break_until is None

    def _agent_life(self) -> None:
        staffing = self._staffing(self._now)
        for agent in self.agents.values():
            if agent.extension == RECEPTION:
                continue
            if not agent.scripted:
                self._follow_shift(agent, agent.shift_rank < staffing)
            if agent.offline_until is not None and self._now >= agent.offline_until:
                agent.registered, agent.offline_until = True, None
            if agent.break_until is not None and self._now >= agent.break_until:
                self._end_break(agent)
            if not agent.registered or agent.state != IDLE or agent.break_until is not None:
                continue
            roll = self._rng.random()
            if roll < STEP / OFFLINE_EVERY:
                agent.registered = False
                agent.offline_until = self._now + self._rng.uniform(*OFFLINE_SECONDS)
            elif roll < STEP / OFFLINE_EVERY + STEP / BREAK_EVERY:
                seconds = self._rng.lognormvariate(math.log(BREAK_MEDIAN), 0.5)
                self._start_break(agent, seconds)
            elif roll < STEP / OFFLINE_EVERY + STEP / BREAK_EVERY + STEP / OWN_CALL_EVERY:
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
        if colleagues and self._rng.random() < 0.4:
            other = self._rng.choice(colleagues)
            self._place_call(agent, str(other.extension), other)
        else:
            self._place_call(agent, external_number(self._rng), None)

    def _place_call(self, agent: Agent, destination: str, other: Agent | None) -> Call:
        outcome = self._own_call_outcome(self._rng, internal=other is not None)
        ring = {"answered": self._rng.uniform(3, 12), "missed": 25.0}.get(outcome, 2.0)
        call = Call(
            kind="internal" if other else "outgoing",
            unique_id=self._unique_id(self._now),
            extension=agent.extension,
            caller=str(agent.extension),
            caller_name=agent.name,
            callee=destination,
            callee_name=other.name if other else None,
            started_at=self._now,
            ring_until=self._now + ring,
            outcome=outcome,
            other_extension=other.extension if other else None,
        )
        agent.call, agent.state = call, RINGING
        if other is not None:
            other.call, other.state = call, RINGING
        return call

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
        answers = self._rng.random() < ANSWER_PROBABILITY
        ring = self._rng.uniform(*RING_SECONDS) if answers else NO_ANSWER_SECONDS
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
            recorded=self._rng.random() < RECORDED_SHARE,
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
                    party.state_until = self._now + self._rng.uniform(*WRAPUP_SECONDS)
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
            if self._rng.random() < AUTOPAUSE_ON_NO_ANSWER:
                self._start_break(agent, self._rng.uniform(60, 180))
            return
        member = queue.members.get(agent.extension)
        if member is not None:
            member.calls_taken += 1
            member.last_call_at = self._now
        entered = call.queue_entered_at if call.queue_entered_at is not None else call.started_at
        talk = int(self._now - call.answered_at)
        recording = (
            wire.recording_name(queue.number, call.caller, entered, call.unique_id)
            if call.recorded
            else ""
        )
        self._write_cdr(
            unique_id=call.unique_id,
            type="incoming",
            when=entered,
            caller=call.caller,
            caller_name=None,
            received=str(queue.number),
            received_name=None,
            destination=str(agent.extension),
            destination_name=agent.name,
            duration=talk,
            application="queue",
            status="answered",
            recording_file=recording,
            complete_duration=int(self._now - entered),
        )

    def _finish_own_call(self, call: Call) -> None:
        answered = call.answered_at is not None
        status = "answered" if answered else call.outcome
        if not answered and status == "answered":
            status = "missed"  # ended by script while still ringing
        self._write_cdr(
            unique_id=call.unique_id,
            type="outgoing",
            when=call.started_at,
            caller=call.caller,
            caller_name=call.caller_name,
            received=call.callee,
            received_name=call.callee_name,
            destination=call.callee,
            destination_name=call.callee_name,
            duration=int(self._now - call.answered_at) if call.answered_at is not None else 0,
            application="call",
            status=status,
            recording_file="",
            complete_duration=int(self._now - call.started_at),
        )

    def _write_queue_cdr(
        self,
        queue: Queue,
        number: str,
        unique_id: str,
        application: str,
        status: str,
        duration: int,
        total: int,
        when: float | None = None,
    ) -> None:
        self._write_cdr(
            unique_id=unique_id,
            type="incoming",
            when=self._now if when is None else when,
            caller=number,
            caller_name=None,
            received=str(queue.number),
            received_name=None,
            destination=str(queue.number),
            destination_name=None,
            duration=duration,
            application=application,
            status=status,
            recording_file="",
            complete_duration=total,
        )

    def _write_cdr(self, **fields: Any) -> CdrRecord:
        record = CdrRecord(id=len(self._cdr) + 1, **fields)
        self._cdr.append(record)
        self._cdr_by_id[record.id] = record
        return record

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
        """CDR rows oldest first, filtered by local date (inclusive), at most 3000."""
        limit = max(0, min(limit, CDR_PAGE_MAX))
        with self.lock:
            selected = []
            skipped = 0
            for record in self._cdr:
                if recordings_only and not record.recording_file:
                    continue
                if date_from is not None or date_to is not None:
                    day = wire.local_time(record.when).date()
                    if (date_from is not None and day < date_from) or (
                        date_to is not None and day > date_to
                    ):
                        continue
                if skipped < offset:
                    skipped += 1
                    continue
                if len(selected) >= limit:
                    break
                selected.append(record.to_json())
            return selected

    def cdr_find(self, *, id: int | None = None, unique_id: str | None = None) -> dict | None:
        with self.lock:
            record = self._find_record(id, unique_id)
            return record.to_json() if record else None

    def _find_record(self, id: int | None, unique_id: str | None) -> CdrRecord | None:
        if unique_id is not None:
            return next((r for r in reversed(self._cdr) if r.unique_id == unique_id), None)
        if id is not None:
            return self._cdr_by_id.get(id)
        return None

    def recording(
        self, *, id: int | None = None, unique_id: str | None = None
    ) -> tuple[str, bytes] | None:
        """(file name, bytes) of a row's recording, or None (no such row or no recording)."""
        with self.lock:
            record = self._find_record(id, unique_id)
            if record is None or not record.recording_file:
                return None
            name, key, seconds = record.recording_file, record.unique_id, record.duration
        return name, fake_mp3(key, seconds)

    def delete_recording(
        self, *, id: int | None = None, unique_id: str | None = None
    ) -> dict[str, Any] | None:
        with self.lock:
            record = self._find_record(id, unique_id)
            if record is None:
                return None
            record.recording_file = ""
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
        """Ring `caller`'s extension, then dial `destination` (when that extension is free)."""
        with self.lock:
            agent = self.agents.get(int(caller)) if caller.isdigit() else None
            if agent is None or not self._available(agent):
                return  # the PBX says "Call queued" regardless
            other = self.agents.get(int(destination)) if destination.isdigit() else None
            if other is not None and not self._available(other):
                other = None
            self._place_call(agent, destination, other)

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

    def abandon_caller(self, unique_id: str) -> None:
        """A waiting caller hangs up now (a missed CDR row)."""
        with self.lock:
            for queue in self.queues.values():
                for caller in queue.waiting:
                    if caller.unique_id == unique_id:
                        self._abandon(queue, caller)
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

    def cdr_count(self) -> int:
        with self.lock:
            return len(self._cdr)

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

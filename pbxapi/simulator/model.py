"""The call centre's parts: agents, queue members, queues, waiting callers and calls.

Plain mutable records; the behaviour lives in `centre` (live) and `history` (past days).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .rules import TALK_MEDIAN

IDLE, RINGING, TALKING, WRAPUP = "idle", "ringing", "talking", "wrapup"


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
    attempt: int = 1  # the how-many-th call of someone who gave up before


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
    extension: int  # the agent who owns the call (after a transfer: who took it over)
    caller: str
    caller_name: str | None
    callee: str
    callee_name: str | None
    started_at: float
    ring_until: float | None  # None: rings until scripted (or, click-to-call, not dialled yet)
    outcome: str  # "answered" | "missed" | "busy" | "unauthorized" | "agent_missed"
    queue: int | None = None
    agent_unique_id: str | None = None  # the agent leg of a queue call
    queue_entered_at: float | None = None
    other_extension: int | None = None  # the callee of an internal call
    answered_at: float | None = None
    ends_at: float | None = None  # None once answered: talks until end_call()
    recorded: bool = False
    transfer_at: float | None = None  # a queue call the agent will hand to a colleague then
    counted: bool = False  # the queue member's calls_taken already counts it (transferred)
    click: bool = False  # placed by click-to-call: the agent's phone rings before dialling
    agent_ring_until: float | None = None  # click-to-call: when the agent picks up
    dialled_at: float | None = None  # click-to-call: when the PBX dialled the destination

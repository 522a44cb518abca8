"""The shapes the live data takes, declared once: the queue snapshot and its parts, the PBX
state, the KPI figures, and every websocket message (docs/websocket.md describes them for a
reader; the API's serializers and the pages' JavaScript follow these).

Times are ISO 8601 strings with the installation's offset (``snapshots.iso``); numbers of queues
and extensions are ints. ``total=False`` marks parts that older snapshots may lack.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from django.utils.translation import pgettext_lazy

# The version of the websocket protocol, sent in ``hello``.
SCHEMA = 1

# An agent's state on the boards, in the order the boards count them, with its words. The page
# gets this list from the server (wallboard.boards), the API's schema lists the same values.
MEMBER_STATES = (
    ("available", pgettext_lazy("agent state", "Available")),
    ("ringing", pgettext_lazy("agent state", "Ringing")),
    ("on_call", pgettext_lazy("agent state", "On call")),
    ("paused", pgettext_lazy("agent state", "Paused")),
    ("offline", pgettext_lazy("agent state", "Offline")),
)
STATES: tuple[str, ...] = tuple(state for state, _label in MEMBER_STATES)
# The states of members who take calls now: the agents the staffing hint compares with.
TAKING_CALLS: tuple[str, ...] = ("available", "ringing", "on_call")
MemberState = Literal["available", "ringing", "on_call", "paused", "offline"]

# The PBX link as the boards show it.
PBX_STATES: tuple[str, ...] = ("ok", "blocked", "unreachable", "starting")
PBXStateName = Literal["ok", "blocked", "unreachable", "starting"]


class Fetched(TypedDict):
    """When each PBX source behind a snapshot was last fetched successfully."""

    queue_status: str | None
    calls: str | None
    extensions: str | None
    queues: str | None


class Counts(TypedDict):
    waiting: int
    members: int
    available: int
    ringing: int
    on_call: int
    paused: int
    offline: int


class WaitingCall(TypedDict):
    unique_id: str
    caller: str | None
    caller_name: str | None
    wait_time: int  # seconds waited when fetched
    since: str | None  # when the caller started waiting


class MemberCall(TypedDict):
    peer: str | None  # who the agent talks to
    since: str | None
    unique_id: str | None


class Member(TypedDict):
    extension: int
    name: str | None
    state: MemberState
    state_since: str | None
    paused: bool
    in_use: bool
    registered: bool
    calls_taken: int  # the PBX's counter: since the member joined the queue
    last_call_taken_ago: int | None
    call: MemberCall | None
    # Today in this queue, from the call records (null until today's figures are published).
    answered: int | None
    talk_seconds: int | None


class TodayFigures(TypedDict):
    """Today's figures of one queue as the call history's KPI engine publishes them
    (docs/kpi.md defines each). Percentages are 0-100 with one decimal, times are seconds."""

    offered_today: int | None
    answered_today: int | None
    missed_today: int | None  # unanswered: abandoned, voicemail, timed out, busy
    abandoned_today: int | None
    service_level: float | None  # by the queue's formula
    service_level_met: bool | None  # service_level >= sl_goal_percent
    sl_target_seconds: int | None
    sl_goal_percent: int | None
    sl_formula: str | None  # "answered", "offered" or "removed"
    asa: float | None  # mean wait of answered calls
    aht: float | None  # mean talk of answered calls
    abandon_rate: float | None  # abandoned / offered


class Kpi(TodayFigures):
    """The snapshot's ``kpi``: today's figures (all null until the first publication of the
    PBX's day) and when they were computed."""

    computed_at: str | None


class AgentToday(TypedDict):
    """One agent's answered calls in one queue today, from the call records."""

    answered: int
    talk_seconds: int


class Staffing(TypedDict):
    """The staffing hint of one queue (docs/kpi.md, "Staffing hint"): how many agents the
    Erlang C model needs for the queue's service-level goal at the recent arrival rate and
    today's AHT, and what it was made from. The agents taking calls now are the snapshot's
    ``counts`` (available + ringing + on_call)."""

    needed: int | None  # None: no hint (too few calls, none answered today) or capped
    capped: bool  # even ``max_agents`` would not reach the goal
    max_agents: int
    window_seconds: int  # arrivals are counted over this many seconds up to computed_at
    calls: int  # calls that arrived in the window
    min_calls: int  # with fewer calls in the window there is no hint
    arrivals_per_hour: float
    aht: float | None  # today's, seconds
    traffic: float | None  # Erlangs
    target_seconds: int
    target_percent: int
    service_level: float | None  # expected with ``needed`` agents, percent
    asa: float | None  # expected mean wait with ``needed`` agents, seconds


class QueueSnapshot(TypedDict):
    queue: int
    name: str | None
    version: int | None  # assigned by the store; grows with every real change
    generated_at: str | None
    fetched: Fetched
    counts: Counts
    longest_wait: int
    longest_wait_since: str | None
    waiting: list[WaitingCall]
    members: list[Member]
    kpi: Kpi
    staffing: Staffing | None  # null until today's figures are published


class QueueSummary(TypedDict):
    """A queue in the queue list; ``counts`` and the rest are null before its first fetch."""

    queue: int
    name: str | None
    version: int
    counts: Counts | None
    longest_wait: int | None
    longest_wait_since: str | None
    generated_at: str | None
    fetched: Fetched | None


class PBXState(TypedDict, total=False):
    state: PBXStateName
    blocked_until: str | None
    unreachable_since: str | None
    last_error: str | None
    checked_at: str | None
    last_success: dict[str, str]  # source -> when it was last fetched successfully


# --- websocket messages (server -> client) -----------------------------------------------


class HelloMessage(TypedDict):
    type: Literal["hello"]
    schema: int
    server_time: str
    heartbeat: float
    queues: list[int]
    can_act: list[int]


class QueuesMessage(TypedDict):
    type: Literal["queues"]
    queues: list[int]
    can_act: list[int]


class SnapshotMessage(TypedDict):
    type: Literal["snapshot"]
    queue: int
    version: int
    data: QueueSnapshot


class PBXMessage(TypedDict):
    type: Literal["pbx"]
    data: PBXState


class HeartbeatMessage(TypedDict):
    type: Literal["heartbeat"]
    server_time: str
    fresh_at: str | None


class ActionResultMessage(TypedDict):
    type: Literal["action_result"]
    request_id: object
    ok: bool
    queue: int
    extension: int
    action: str
    code: int | None
    detail: str
    message: str


class ErrorMessage(TypedDict):
    type: Literal["error"]
    request_id: object
    code: str
    message: str


ServerMessage = (
    HelloMessage
    | QueuesMessage
    | SnapshotMessage
    | PBXMessage
    | HeartbeatMessage
    | ActionResultMessage
    | ErrorMessage
)

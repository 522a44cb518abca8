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


class Kpi(TypedDict, total=False):
    """Today's figures of one queue (null until today's call records have been counted)."""

    answered_today: int | None
    missed_today: int | None
    service_level: float | None  # percent, one decimal
    sl_target_seconds: int | None
    kpi_fetched: str | None


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

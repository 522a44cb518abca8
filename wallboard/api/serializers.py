"""The API's response shapes. Snapshots and summaries are the shapes of ``wallboard.live.shapes``
(documented in docs/websocket.md), passed through these serializers so that the OpenAPI schema
describes exactly what is sent."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from rest_framework import serializers

from wallboard.control.services import ACTIONS, Reason
from wallboard.history.intervals import INTERVALS, Period
from wallboard.history.kpi import FORMULAS, AgentFigures, QueueFigures
from wallboard.history.models import CallRecord
from wallboard.history.records import OUTCOMES, UNANSWERED_OUTCOMES
from wallboard.live.shapes import PBX_STATES, STATES


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in words.")


class QueueCountsSerializer(serializers.Serializer):
    waiting = serializers.IntegerField(help_text="Callers waiting in the queue.")
    members = serializers.IntegerField()
    available = serializers.IntegerField()
    ringing = serializers.IntegerField()
    on_call = serializers.IntegerField()
    paused = serializers.IntegerField()
    offline = serializers.IntegerField(help_text="Members whose extension is not registered.")


class FetchedSerializer(serializers.Serializer):
    """When each PBX source behind the snapshot was last fetched successfully."""

    queue_status = serializers.DateTimeField(allow_null=True)
    calls = serializers.DateTimeField(allow_null=True)
    extensions = serializers.DateTimeField(allow_null=True)
    queues = serializers.DateTimeField(allow_null=True)


class QueueSummarySerializer(serializers.Serializer):
    queue = serializers.IntegerField()
    name = serializers.CharField(allow_null=True)
    version = serializers.IntegerField(
        help_text="Grows with every real change of the snapshot; 0 before its first fetch."
    )
    counts = QueueCountsSerializer(allow_null=True, help_text="Null before the first fetch.")
    longest_wait = serializers.IntegerField(
        allow_null=True, help_text="Seconds the longest-waiting caller had waited when fetched."
    )
    longest_wait_since = serializers.DateTimeField(
        allow_null=True, help_text="When the longest-waiting caller started waiting."
    )
    generated_at = serializers.DateTimeField(allow_null=True)
    fetched = FetchedSerializer(allow_null=True)


class WaitingCallSerializer(serializers.Serializer):
    unique_id = serializers.CharField()
    caller = serializers.CharField(allow_null=True)
    caller_name = serializers.CharField(allow_null=True)
    wait_time = serializers.IntegerField(help_text="Seconds waited, as fetched.")
    since = serializers.DateTimeField(allow_null=True, help_text="When the caller started waiting.")


class MemberCallSerializer(serializers.Serializer):
    peer = serializers.CharField(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)
    unique_id = serializers.CharField(allow_null=True)


class MemberSerializer(serializers.Serializer):
    extension = serializers.IntegerField()
    name = serializers.CharField(allow_null=True)
    state = serializers.ChoiceField(choices=list(STATES))
    state_since = serializers.DateTimeField(allow_null=True)
    paused = serializers.BooleanField()
    in_use = serializers.BooleanField()
    registered = serializers.BooleanField(
        help_text="False when the extension's phone is not registered (state offline)."
    )
    calls_taken = serializers.IntegerField(
        help_text="The PBX's counter: calls since the member joined the queue (it restarts "
        "when the member is removed and added again; `answered` is today's from the records)."
    )
    last_call_taken_ago = serializers.IntegerField(allow_null=True)
    call = MemberCallSerializer(allow_null=True)
    answered = serializers.IntegerField(
        allow_null=True,
        help_text="Calls of this queue the agent answered today, from the call records; null "
        "until today's figures are published.",
    )
    talk_seconds = serializers.IntegerField(
        allow_null=True, help_text="The agent's talk time on those calls today, seconds."
    )


class KpiSerializer(serializers.Serializer):
    """Today's figures (docs/kpi.md defines each); all null until published for the day."""

    offered_today = serializers.IntegerField(allow_null=True)
    answered_today = serializers.IntegerField(allow_null=True)
    missed_today = serializers.IntegerField(
        allow_null=True, help_text="Unanswered: abandoned, timed out (voicemail or cut off), busy."
    )
    abandoned_today = serializers.IntegerField(allow_null=True)
    service_level = serializers.FloatField(
        allow_null=True,
        help_text="Percent (0 to 100, one decimal) meeting sl_target_seconds today, by the "
        "queue's formula (sl_formula).",
    )
    service_level_met = serializers.BooleanField(
        allow_null=True, help_text="service_level >= sl_goal_percent."
    )
    sl_target_seconds = serializers.IntegerField(allow_null=True)
    sl_goal_percent = serializers.IntegerField(allow_null=True)
    sl_formula = serializers.ChoiceField(choices=list(FORMULAS), allow_null=True)
    asa = serializers.FloatField(
        allow_null=True, help_text="Mean wait of answered calls, seconds (one decimal)."
    )
    aht = serializers.FloatField(
        allow_null=True, help_text="Mean talk of answered calls, seconds (one decimal)."
    )
    abandon_rate = serializers.FloatField(
        allow_null=True, help_text="Abandoned / offered, percent (one decimal)."
    )
    computed_at = serializers.DateTimeField(
        allow_null=True, help_text="When the call history computed these figures."
    )


class StaffingSerializer(serializers.Serializer):
    """The staffing hint (Erlang C; docs/kpi.md, "Staffing hint") and what it was made from.
    Compare `needed` with the members taking calls now: counts.available + ringing + on_call."""

    needed = serializers.IntegerField(
        allow_null=True,
        help_text="Agents needed for the service-level goal; null without a hint (fewer than "
        "min_calls calls in the window, or no call answered today) or when capped.",
    )
    capped = serializers.BooleanField(help_text="Even max_agents would not reach the goal.")
    max_agents = serializers.IntegerField()
    window_seconds = serializers.IntegerField(help_text="Arrivals are counted over this window.")
    calls = serializers.IntegerField(help_text="Calls that arrived in the window.")
    min_calls = serializers.IntegerField()
    arrivals_per_hour = serializers.FloatField()
    aht = serializers.FloatField(allow_null=True, help_text="Today's AHT, seconds.")
    traffic = serializers.FloatField(allow_null=True, help_text="Offered load, Erlangs.")
    target_seconds = serializers.IntegerField()
    target_percent = serializers.IntegerField()
    service_level = serializers.FloatField(
        allow_null=True, help_text="Expected service level with `needed` agents, percent."
    )
    asa = serializers.FloatField(
        allow_null=True, help_text="Expected mean wait with `needed` agents, seconds."
    )


class QueueSnapshotSerializer(serializers.Serializer):
    queue = serializers.IntegerField()
    name = serializers.CharField(allow_null=True)
    version = serializers.IntegerField()
    generated_at = serializers.DateTimeField(allow_null=True)
    fetched = FetchedSerializer()
    counts = QueueCountsSerializer()
    longest_wait = serializers.IntegerField(allow_null=True)
    longest_wait_since = serializers.DateTimeField(allow_null=True)
    waiting = WaitingCallSerializer(many=True)
    members = MemberSerializer(many=True)
    kpi = KpiSerializer()
    staffing = StaffingSerializer(
        allow_null=True, help_text="Null until today's figures are published."
    )


class ActionOutcomeSerializer(serializers.Serializer):
    queue = serializers.IntegerField()
    extension = serializers.IntegerField()
    action = serializers.ChoiceField(choices=sorted(ACTIONS))
    ok = serializers.BooleanField(help_text="True when the PBX did it.")
    reason = serializers.ChoiceField(
        choices=[reason.value for reason in Reason],
        help_text="accepted, or why not: refused (the PBX said no), blocked (rate-limit block), "
        "budget_exhausted, timeout (may or may not have happened), unreachable, pbx_error, "
        "unavailable (the wallboard's own Redis), invalid.",
    )
    code = serializers.IntegerField(
        allow_null=True,
        help_text="The PBX's code: 200 done; 400 Already there / Not there; 401 No such queue; "
        "402 Unknown status; 403 blocked; null when the PBX gave no answer.",
    )
    detail = serializers.CharField(help_text="The PBX's answer as it gave it (English).")
    message = serializers.CharField(help_text="The answer in words, in the request's language.")
    retry_after = serializers.IntegerField(
        allow_null=True, help_text="Seconds after which trying again can succeed."
    )


class PBXStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=list(PBX_STATES))
    blocked_until = serializers.DateTimeField(allow_null=True)
    unreachable_since = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    last_success = serializers.DictField(
        child=serializers.DateTimeField(),
        help_text='Last successful fetch of each source ("calls", "queue_status:100", ...).',
    )
    checked_at = serializers.DateTimeField(allow_null=True)


HEALTH_STATUSES = ["up", "degraded", "blocked"]


class HealthStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=HEALTH_STATUSES,
        help_text="up; degraded (PBX unreachable, or the boards' data stale); blocked (the PBX "
        "blocks our IP for its rate limit).",
    )


class HealthSerializer(HealthStatusSerializer):
    """The status and, for an authenticated caller, the details. The details are optional in
    the schema rather than a second shape: the bare status would also match the full shape's
    ``status``, so a ``oneOf`` of the two is ambiguous for every authenticated answer."""

    pbx = PBXStateSerializer(
        required=False,
        help_text="The PBX connection: ok, blocked until, unreachable since (authenticated).",
    )
    fresh_at = serializers.DateTimeField(
        allow_null=True,
        required=False,
        help_text="When the last successful PBX fetch completed (authenticated).",
    )
    requests_last_window = serializers.IntegerField(
        required=False,
        help_text="PBX requests spent in the budget's current window (PBX_BUDGET_WINDOW seconds; "
        "authenticated).",
    )
    budget_blocked_until = serializers.DateTimeField(
        allow_null=True,
        required=False,
        help_text="Until when the shared budget refuses every PBX request (authenticated).",
    )
    connected_clients = serializers.IntegerField(
        required=False, help_text="Open websocket connections (authenticated)."
    )


# --- call history (reports and call records) ----------------------------------------------
# Reports can hold tens of thousands of sets of figures: the views build them with the plain
# functions below (a DRF serializer per figure would take seconds), and these serializers
# describe the same shapes for the schema (tests/api/test_reports.py checks they agree).

FIGURE_FIELDS = (
    "offered",
    "answered",
    "unanswered",
    "abandoned",
    "short_abandoned",
    "voicemail",
    "timed_out",
    "busy",
    "answered_within_target",
    "service_level",
    "service_level_met",
    "asa",
    "aht",
    "longest_wait",
    "abandon_rate",
    "talk_seconds",
    "wait_unknown",
)


class FiguresSerializer(serializers.Serializer):
    """One queue's figures over one period (docs/kpi.md, "Figures"). Percentages 0-100 with
    one decimal, times in seconds; a figure with nothing to compute it from is null."""

    offered = serializers.IntegerField(help_text="Answered + unanswered.")
    answered = serializers.IntegerField()
    unanswered = serializers.IntegerField(help_text="Abandoned + voicemail + timed out + busy.")
    abandoned = serializers.IntegerField(
        help_text="Short abandons included unless the queue leaves them out."
    )
    short_abandoned = serializers.IntegerField(help_text="Always counted, left out or not.")
    voicemail = serializers.IntegerField(help_text="Timed out and left a message.")
    timed_out = serializers.IntegerField(help_text="Timed out and cut off.")
    busy = serializers.IntegerField(help_text="Refused: the queue was full.")
    answered_within_target = serializers.IntegerField()
    service_level = serializers.FloatField(allow_null=True, help_text="By the queue's formula.")
    service_level_met = serializers.BooleanField(allow_null=True)
    asa = serializers.FloatField(allow_null=True, help_text="Mean wait of answered calls.")
    aht = serializers.FloatField(allow_null=True, help_text="Mean talk of answered calls.")
    longest_wait = serializers.IntegerField(allow_null=True)
    abandon_rate = serializers.FloatField(allow_null=True, help_text="Abandoned / offered.")
    talk_seconds = serializers.IntegerField()
    wait_unknown = serializers.IntegerField(
        help_text="Calls left out of waits and service level: the PBX sent no wait."
    )


class KpiRulesSerializer(serializers.Serializer):
    target_seconds = serializers.IntegerField(help_text="Service-level target T, seconds.")
    target_percent = serializers.IntegerField(help_text="Service-level goal, percent.")
    formula = serializers.ChoiceField(choices=list(FORMULAS))
    short_abandons_excluded = serializers.BooleanField()


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="In the PBX's time zone, with its offset.")
    end = serializers.DateTimeField()
    hours = serializers.FloatField(
        help_text="Elapsed hours: 23 or 25 on the days the clocks change; weeks and months are "
        "cut to the range."
    )


class QueueReportRowSerializer(serializers.Serializer):
    queue = serializers.IntegerField()
    rules = KpiRulesSerializer()
    totals = FiguresSerializer(help_text="The whole range.")
    periods = FiguresSerializer(many=True, help_text="One per period, in the order of `periods`.")


class QueueReportSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    interval = serializers.ChoiceField(choices=list(INTERVALS))
    time_zone = serializers.CharField(help_text="The PBX's: days and periods are its local ones.")
    periods = PeriodSerializer(many=True)
    queues = QueueReportRowSerializer(many=True)


class AgentFiguresSerializer(serializers.Serializer):
    agent = serializers.CharField(help_text="Who answered: the extension the PBX wrote.")
    name = serializers.CharField(help_text="The name the PBX wrote for the agent (may be empty).")
    calls = serializers.IntegerField(help_text="Queue calls answered.")
    talk_seconds = serializers.IntegerField()
    aht = serializers.FloatField(allow_null=True)
    longest_talk = serializers.IntegerField()
    calls_by_queue = serializers.DictField(
        child=serializers.IntegerField(), help_text='Answered calls per queue: {"100": 12}.'
    )


class AgentReportSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    time_zone = serializers.CharField()
    queues = serializers.ListField(
        child=serializers.IntegerField(),
        allow_null=True,
        help_text="The queues counted; null: every queue (admins).",
    )
    agents = AgentFiguresSerializer(many=True, help_text="Most calls first.")


RECORD_FIELDS = (
    "id",
    "when",
    "day",
    "queue",
    "outcome",
    "wait",
    "talk",
    "agent",
    "type",
    "caller",
    "caller_name",
    "received",
    "received_name",
    "destination",
    "destination_name",
    "duration",
    "application",
    "status",
    "recording_file",
    "unique_id",
    "complete_duration",
)


class CallRecordSerializer(serializers.Serializer):
    """One call record: the PBX's fields as sent (empty text as "") and what was worked out
    from them (docs/kpi.md, "Which rows are queue calls")."""

    id = serializers.IntegerField(help_text="The PBX's id of the row.")
    when = serializers.DateTimeField(help_text="When the call started, PBX time with offset.")
    day = serializers.DateField(help_text="The PBX's local day of the call.")
    queue = serializers.IntegerField(allow_null=True, help_text="Null: not a (known) queue call.")
    outcome = serializers.ChoiceField(
        choices=["", *OUTCOMES], help_text='How a queue call ended; "" for other rows.'
    )
    wait = serializers.IntegerField(allow_null=True, help_text="Seconds; null when unknown.")
    talk = serializers.IntegerField(allow_null=True, help_text="Seconds, answered calls only.")
    agent = serializers.CharField(help_text='Who answered; "" unless answered.')
    type = serializers.CharField()
    caller = serializers.CharField()
    caller_name = serializers.CharField()
    received = serializers.CharField()
    received_name = serializers.CharField()
    destination = serializers.CharField()
    destination_name = serializers.CharField()
    duration = serializers.IntegerField()
    application = serializers.CharField()
    status = serializers.CharField()
    recording_file = serializers.CharField()
    unique_id = serializers.CharField()
    complete_duration = serializers.IntegerField(allow_null=True)


class CallRecordPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Records matching, on every page.")
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    pages = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CallRecordSerializer(many=True, help_text="Newest first.")


def figures_data(figures: QueueFigures) -> dict[str, Any]:
    """``FiguresSerializer``'s shape."""
    return {name: getattr(figures, name) for name in FIGURE_FIELDS}


def rules_data(figures: QueueFigures) -> dict[str, Any]:
    """``KpiRulesSerializer``'s shape: the rules the figures were counted by."""
    return {
        "target_seconds": figures.target_seconds,
        "target_percent": figures.target_percent,
        "formula": figures.formula,
        "short_abandons_excluded": figures.short_abandons_excluded,
    }


def period_data(period: Period) -> dict[str, Any]:
    return {
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "hours": period.hours,
    }


def agent_data(figures: AgentFigures) -> dict[str, Any]:
    return {
        "agent": figures.agent,
        "name": figures.name,
        "calls": figures.calls,
        "talk_seconds": figures.talk_seconds,
        "aht": figures.aht,
        "longest_talk": figures.longest_talk,
        "calls_by_queue": {str(queue): calls for queue, calls in figures.calls_by_queue.items()},
    }


def record_data(record: CallRecord, *, zone: ZoneInfo) -> dict[str, Any]:
    data = {name: getattr(record, name) for name in RECORD_FIELDS}
    data["when"] = record.when.astimezone(zone).isoformat()
    data["day"] = record.day.isoformat()
    return data


# --- missed callers and call back ---------------------------------------------------------

# Entry ids are the PBX's call record ids (PositiveBigInteger-sized in the database).
MAX_ENTRY_ID = 9_223_372_036_854_775_807
MAX_EXTENSION = 2_147_483_647


class CallBackInProgressSerializer(serializers.Serializer):
    by = serializers.CharField(help_text="Who is calling back: their name, else username.")
    by_you = serializers.BooleanField(help_text="The caller of this API is calling back.")
    since = serializers.DateTimeField()
    extension = serializers.IntegerField(help_text="The extension that rings first.")


class MissedCallerSerializer(serializers.Serializer):
    """One outside number whose queue calls today went unanswered and who has not been served
    since (docs/kpi.md, "Missed callers")."""

    id = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ENTRY_ID,
        help_text="The newest unanswered call's record id: what a call back names.",
    )
    number = serializers.CharField(help_text="As the PBX wrote it (00421905123456).")
    number_display = serializers.CharField(help_text="Written for reading (00421 905 123 456).")
    queue = serializers.IntegerField(help_text="The queue of the newest unanswered call.")
    when = serializers.DateTimeField(help_text="The newest unanswered call, PBX time.")
    first_when = serializers.DateTimeField(help_text="The first unanswered call since served.")
    wait = serializers.IntegerField(
        allow_null=True, help_text="Seconds the newest call waited; null when unknown."
    )
    outcome = serializers.ChoiceField(
        choices=list(UNANSWERED_OUTCOMES), help_text="How the newest call ended."
    )
    attempts = serializers.IntegerField(help_text="Unanswered calls since last served.")
    can_call_back = serializers.BooleanField(help_text="The caller of this API may call back.")
    call_back = CallBackInProgressSerializer(
        allow_null=True, help_text="The call back in progress on this number, if any."
    )


class MissedCallerListSerializer(serializers.Serializer):
    day = serializers.DateField(help_text="Today, the PBX's local day.")
    time_zone = serializers.CharField()
    default_extension = serializers.IntegerField(
        allow_null=True, help_text="The extension the caller of this API last called back from."
    )
    callers = MissedCallerSerializer(many=True, help_text="Newest first.")


class CallBackRequestSerializer(serializers.Serializer):
    extension = serializers.IntegerField(
        min_value=1,
        max_value=MAX_EXTENSION,
        help_text="The extension that rings first (yours); the list's `default_extension` is "
        "the one you last used.",
    )


class CallBackOutcomeSerializer(serializers.Serializer):
    entry = serializers.IntegerField(help_text="The missed call named.")
    queue = serializers.IntegerField()
    extension = serializers.IntegerField()
    number = serializers.CharField(help_text="The number sent to the PBX to dial.")
    number_display = serializers.CharField()
    ok = serializers.BooleanField(help_text="True when the PBX queued the call.")
    reason = serializers.ChoiceField(
        choices=[reason.value for reason in Reason],
        help_text="accepted, or why not: refused (the PBX said no), blocked, budget_exhausted, "
        "timeout (may or may not ring), unreachable, pbx_error, unavailable, invalid.",
    )
    code = serializers.IntegerField(
        allow_null=True, help_text="The PBX's code or HTTP status; null when it gave none."
    )
    detail = serializers.CharField(help_text="The PBX's answer as it gave it (English).")
    message = serializers.CharField(help_text="The answer in words, in the request's language.")
    retry_after = serializers.IntegerField(
        allow_null=True, help_text="Seconds after which trying again can succeed."
    )


class CallBackProblemSerializer(serializers.Serializer):
    """Why a call back did not happen: `detail` always; the outcome's fields when the PBX was
    asked; `call_back` when the number is being called back already."""

    detail = serializers.CharField(help_text="What went wrong, in words.")
    entry = serializers.IntegerField(required=False)
    queue = serializers.IntegerField(required=False)
    extension = serializers.IntegerField(required=False)
    number = serializers.CharField(required=False)
    number_display = serializers.CharField(required=False)
    ok = serializers.BooleanField(required=False)
    reason = serializers.ChoiceField(choices=[reason.value for reason in Reason], required=False)
    code = serializers.IntegerField(allow_null=True, required=False)
    message = serializers.CharField(required=False)
    retry_after = serializers.IntegerField(allow_null=True, required=False)
    call_back = CallBackInProgressSerializer(required=False)

"""The API's response shapes. Snapshots and summaries are the shapes of ``wallboard.live.shapes``
(documented in docs/websocket.md), passed through these serializers so that the OpenAPI schema
describes exactly what is sent."""

from __future__ import annotations

from rest_framework import serializers

from wallboard.control.services import ACTIONS, Reason
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
    calls_taken = serializers.IntegerField()
    last_call_taken_ago = serializers.IntegerField(allow_null=True)
    call = MemberCallSerializer(allow_null=True)


class KpiSerializer(serializers.Serializer):
    answered_today = serializers.IntegerField(allow_null=True)
    missed_today = serializers.IntegerField(allow_null=True)
    service_level = serializers.FloatField(
        allow_null=True, help_text="Percent (0 to 100) answered within sl_target_seconds today."
    )
    sl_target_seconds = serializers.IntegerField(required=False)
    kpi_fetched = serializers.DateTimeField(
        allow_null=True, required=False, help_text="When today's call records were last fetched."
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

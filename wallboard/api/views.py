"""The JSON API: read the snapshots the poller keeps in Redis, call the control services, and
read the call history.

Views stay thin: reads come from ``wallboard.live.selectors``, ``wallboard.history.selectors`` and
``wallboard.control.selectors`` (never a PBX request), actions go through
``wallboard.control.services`` (``member_action``, ``missed_caller_call_back``).
Browsers authenticate with the session (DRF enforces CSRF on unsafe methods for session users);
programs with ``Authorization: Token``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import redis
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pbxapi import errors as pbx
from wallboard.api import serializers
from wallboard.api.queries import (
    AGENT_PARAMETERS,
    CALL_PARAMETERS,
    DEFAULT_PAGE_SIZE,
    REPORT_PARAMETERS,
    HistoryQuery,
    history_query,
)
from wallboard.api.tokens import ApiTokenAuthentication
from wallboard.control import access
from wallboard.control.selectors import (
    call_back_default_get,
    missed_caller_queues,
    missed_callers_list,
)
from wallboard.control.services import (
    MAX_NUMBER,
    ActionForbidden,
    ActionInvalid,
    ActionOutcome,
    ActionThrottled,
    CallBackClaimed,
    CallBackConflict,
    CallBackNotFound,
    Reason,
    member_action,
    missed_caller_call_back,
)
from wallboard.history.intervals import INTERVALS, QueryInvalid, local_today, range_check
from wallboard.history.records import OUTCOMES
from wallboard.history.selectors import (
    RECORDS_PAGE_SIZE_MAX,
    agent_figures,
    call_records_page,
    pbx_zone,
    queue_figures,
    queues_with_calls,
)
from wallboard.live import selectors
from wallboard.outage import DATABASE_OUTAGES

logger = logging.getLogger(__name__)

# Why each kind of failure gets its status: a refusal is the PBX's considered "no" about the
# member's state (409 Conflict); blocked / no budget slot are temporary and say when to retry
# (503 + Retry-After); the PBX failing or answering nonsense is a bad gateway (502), and silence a
# gateway timeout (504) — the action may still have happened, so a program must re-read the queue.
_STATUS_FOR_REASON = {
    Reason.ACCEPTED: status.HTTP_200_OK,
    Reason.REFUSED: status.HTTP_409_CONFLICT,
    Reason.BLOCKED: status.HTTP_503_SERVICE_UNAVAILABLE,
    Reason.BUDGET_EXHAUSTED: status.HTTP_503_SERVICE_UNAVAILABLE,
    Reason.UNAVAILABLE: status.HTTP_503_SERVICE_UNAVAILABLE,
    Reason.TIMEOUT: status.HTTP_504_GATEWAY_TIMEOUT,
    Reason.UNREACHABLE: status.HTTP_502_BAD_GATEWAY,
    Reason.PBX_ERROR: status.HTTP_502_BAD_GATEWAY,
    Reason.INVALID: status.HTTP_400_BAD_REQUEST,
}

# Queue and extension numbers are positive and fit the database's int4; the schema says so, so
# that a value it calls valid is never the 400 of an invalid one.
_POSITIVE_NUMBER = {"type": "integer", "minimum": 1, "maximum": MAX_NUMBER}
_QUEUE_PARAMETER = OpenApiParameter(
    "queue", _POSITIVE_NUMBER, OpenApiParameter.PATH, description="The PBX queue number."
)
_EXTENSION_PARAMETER = OpenApiParameter(
    "extension", _POSITIVE_NUMBER, OpenApiParameter.PATH, description="The agent's extension."
)
_RETRY_AFTER_HEADER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429, 503],
    description="Seconds after which the action can be tried again.",
)
_UNAUTHENTICATED = OpenApiResponse(
    serializers.ErrorSerializer, description="Not logged in and no valid token."
)
_REDIS_UNAVAILABLE = OpenApiResponse(
    serializers.ErrorSerializer, description="The wallboard's Redis is unavailable."
)
# A Redis restart takes seconds; asking again sooner only adds load.
_REDIS_RETRY_AFTER_SECONDS = 5
# Queue numbers are PositiveIntegerFields (PostgreSQL's int4).
_MAX_QUEUE = 2_147_483_647


class _ApiView(APIView):
    def handle_exception(self, exc: Exception) -> Response:
        # Snapshots, PBX state and budget live in Redis, users, tokens and history in the
        # database: without either there is nothing to serve, which is a temporary 503 rather
        # than a 500 that looks like a bug (a token's authentication already needs the database).
        if isinstance(exc, redis.RedisError | pbx.BudgetUnavailable):
            logger.warning("API %s: Redis unavailable: %r", self.request.path, exc)
            return _unavailable(gettext("The wallboard's Redis is unavailable."))
        if isinstance(exc, DATABASE_OUTAGES):
            logger.warning("API %s: database unavailable: %r", self.request.path, exc)
            return _unavailable(gettext("The wallboard's database is unavailable."))
        return super().handle_exception(exc)


def _unavailable(detail: str) -> Response:
    response = Response({"detail": detail}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response["Retry-After"] = str(_REDIS_RETRY_AFTER_SECONDS)
    return response


class _AuthenticatedView(_ApiView):
    """Token first: a program without credentials gets 401 with ``WWW-Authenticate: Token``
    (DRF answers 403 when the first scheme, the session, has no challenge to offer)."""

    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]


class QueueListView(_AuthenticatedView):
    @extend_schema(
        operation_id="queues_list",
        summary="Every queue the caller may see, with its summary",
        responses={
            200: serializers.QueueSummarySerializer(many=True),
            401: _UNAUTHENTICATED,
            503: _REDIS_UNAVAILABLE,
        },
        tags=["queues"],
    )
    def get(self, request: Request) -> Response:
        visible = access.visible_queues(request.user)
        summaries = [
            summary
            for summary in selectors.queue_summaries()
            if visible is None or summary["queue"] in visible
        ]
        return Response(serializers.QueueSummarySerializer(summaries, many=True).data)


class QueueDetailView(_AuthenticatedView):
    @extend_schema(
        operation_id="queues_retrieve",
        summary="The full board snapshot of one queue",
        description="404 when the queue is unknown or not visible to the caller (the API does "
        "not reveal which queues exist to those who may not see them).",
        parameters=[_QUEUE_PARAMETER],
        responses={
            200: serializers.QueueSnapshotSerializer,
            401: _UNAUTHENTICATED,
            404: OpenApiResponse(serializers.ErrorSerializer, description="No such visible queue."),
            503: _REDIS_UNAVAILABLE,
        },
        tags=["queues"],
    )
    def get(self, request: Request, queue: int) -> Response:
        visible = access.can_view_queue(request.user, queue)
        snapshot = selectors.snapshot_get(queue=queue) if visible else None
        if snapshot is None:
            raise Http404(gettext("No such queue."))
        return Response(serializers.QueueSnapshotSerializer(snapshot).data)


class MemberActionView(_AuthenticatedView):
    """POST one of the four member actions; subclasses name the action."""

    member_action_name: str = ""

    def post(self, request: Request, queue: str, extension: str) -> Response:
        try:
            outcome = member_action(
                user=request.user,
                queue=queue,
                extension=extension,
                action=self.member_action_name,
                source="api",
            )
        except ActionForbidden as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except ActionInvalid as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except ActionThrottled as exc:
            response = Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
            response["Retry-After"] = str(exc.retry_after)
            return response
        return _outcome_response(outcome)


def _outcome_response(outcome: ActionOutcome) -> Response:
    body = {
        "queue": outcome.queue,
        "extension": outcome.extension,
        "action": outcome.action,
        "ok": outcome.ok,
        "reason": outcome.reason.value,
        "code": outcome.code,
        "detail": outcome.detail,
        "message": outcome.message,
        "retry_after": outcome.retry_after,
    }
    response = Response(
        serializers.ActionOutcomeSerializer(body).data, status=_STATUS_FOR_REASON[outcome.reason]
    )
    if outcome.retry_after is not None:
        response["Retry-After"] = str(outcome.retry_after)
    return response


_ACTION_SUMMARIES = {
    "pause": "Pause a member: the PBX stops offering it calls from this queue",
    "unpause": "Unpause a member: the PBX offers it calls again",
    "add": "Add an extension to the queue as a member",
    "remove": "Remove a member from the queue",
}


def _action_schema(action: str):
    """The schema of one action's endpoint: its own operation, every status it can answer."""
    outcome = serializers.ActionOutcomeSerializer
    return extend_schema(
        operation_id=f"queues_members_{action}",
        summary=_ACTION_SUMMARIES[action],
        description="Sent at once through the PBX budget's action lane (one PBX request) and "
        "audited; on success every board shows the change within about a second. The body "
        "carries the PBX's answer in words (`message`) whatever the status.",
        request=None,
        parameters=[_QUEUE_PARAMETER, _EXTENSION_PARAMETER, _RETRY_AFTER_HEADER],
        responses={
            200: OpenApiResponse(outcome, description="The PBX did it."),
            400: OpenApiResponse(
                serializers.ErrorSerializer, description="Invalid queue or extension."
            ),
            401: _UNAUTHENTICATED,
            403: OpenApiResponse(
                serializers.ErrorSerializer,
                description="Not logged in, CSRF token missing, or not allowed to act on "
                "this queue (no PBX request was spent).",
            ),
            409: OpenApiResponse(
                outcome,
                description="The PBX refused: Already there, Not there, No such queue, ...",
            ),
            429: OpenApiResponse(
                serializers.ErrorSerializer,
                description="More than ACTIONS_PER_USER_PER_MINUTE actions a minute from this "
                "user (30 by default); nothing was sent; retry after Retry-After seconds.",
            ),
            502: OpenApiResponse(
                outcome, description="The PBX is unreachable or answered with an error."
            ),
            503: OpenApiResponse(
                outcome,
                description="The PBX has blocked us (rate limit) or the request budget is "
                "used up: nothing was sent; retry after Retry-After seconds.",
            ),
            504: OpenApiResponse(
                outcome,
                description="The PBX did not answer in time: the action may or may not have "
                "happened; re-read the queue.",
            ),
        },
        tags=["actions"],
    )


@extend_schema_view(post=_action_schema("pause"))
class MemberPauseView(MemberActionView):
    member_action_name = "pause"


@extend_schema_view(post=_action_schema("unpause"))
class MemberUnpauseView(MemberActionView):
    member_action_name = "unpause"


@extend_schema_view(post=_action_schema("add"))
class MemberAddView(MemberActionView):
    member_action_name = "add"


@extend_schema_view(post=_action_schema("remove"))
class MemberRemoveView(MemberActionView):
    member_action_name = "remove"


class HealthView(_ApiView):
    """Load balancers and monitoring read it without credentials: they get the status word
    only. Details (PBX state, budget, clients) need a login or token."""

    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [AllowAny]

    def perform_authentication(self, request: Request) -> None:
        # Credentials are looked at, never demanded: a broken token still gets the status.
        try:
            request.user  # noqa: B018 - DRF authenticates on first access
        except AuthenticationFailed:
            request.user = AnonymousUser()

    @extend_schema(
        operation_id="health",
        summary="Up, degraded or blocked; details for a logged-in user or a token",
        description="200 whenever the wallboard can read its own state, whatever the PBX's "
        "state; 503 when the wallboard's Redis cannot be read. Without credentials only "
        "`status`; with a session or `Authorization: Token` also the details.",
        responses={
            200: OpenApiResponse(
                serializers.HealthSerializer,
                description="The status; the details too for an authenticated caller.",
            ),
            503: _REDIS_UNAVAILABLE,
        },
        auth=[],
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        health = selectors.health_get()
        if not (request.user.is_authenticated and request.user.is_active):
            return Response(serializers.HealthStatusSerializer(health).data)
        return Response(serializers.HealthSerializer(health).data)


# --- call history: reports and call records ------------------------------------------------

_HISTORY_FORBIDDEN = OpenApiResponse(
    serializers.ErrorSerializer,
    description="A viewer (only admins and team leads read call history), or a team lead "
    "asking for a queue that is not theirs.",
)
_HISTORY_INVALID = OpenApiResponse(
    serializers.ErrorSerializer,
    description="A question that cannot be answered as asked, with the reason in `detail`: a "
    "date that is not YYYY-MM-DD or outside 2000-2100, a range that ends before it starts or is "
    "too long for its interval, an unknown interval, outcome or parameter, a bad queue list or "
    "page, a report of more than 100,000 sets of figures.",
)
# A day the history answers for (history.intervals: 2000-01-01 to 2100-12-31).
_HISTORY_DAY = {"type": "string", "format": "date", "pattern": r"^(20\d\d|2100)-\d\d-\d\d$"}
_DATE_PARAMETERS = [
    OpenApiParameter(
        "from",
        _HISTORY_DAY,
        description="First day (YYYY-MM-DD, the PBX's local day, 2000 to 2100); default: today.",
    ),
    OpenApiParameter(
        "to", _HISTORY_DAY, description="Last day, included; default: the same as `from`."
    ),
    OpenApiParameter(
        "queues",
        OpenApiTypes.STR,
        description="Queue numbers separated by commas (at most 500); default: every queue the "
        "caller may read (a team lead's own; for admins every queue in the PBX's list or with "
        "calls in the range).",
    ),
]


class _HistoryView(_AuthenticatedView):
    """Reads of the call history: admins every queue, team leads theirs, viewers nothing
    (``access.reportable_queues``). Every question that cannot be answered is a 400."""

    parameters: tuple[str, ...] = ()

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, QueryInvalid):
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)

    def question(self, request: Request) -> tuple[HistoryQuery, list[int] | None]:
        """The question asked and the queues it covers (None: every queue, for an admin who
        named none). Raises PermissionDenied (403) and QueryInvalid (400)."""
        allowed = access.reportable_queues(request.user)
        if allowed is not None and not allowed:
            raise PermissionDenied(gettext("Only admins and team leads may read call history."))
        today = local_today(timezone.now(), pbx_zone())
        query = history_query(request.query_params, allowed=self.parameters, today=today)
        if query.queues is None:
            return query, None if allowed is None else sorted(allowed)
        if allowed is not None:
            refused = [queue for queue in query.queues if queue not in allowed]
            if refused:
                raise PermissionDenied(
                    gettext("You may not read the call history of queue(s) %(queues)s.")
                    % {"queues": ", ".join(map(str, refused))}
                )
        return query, query.queues


class QueueReportView(_HistoryView):
    parameters = REPORT_PARAMETERS

    @extend_schema(
        operation_id="reports_queues",
        summary="Every queue figure for each period of a range, and for the whole range",
        description="The KPI engine's figures (docs/kpi.md: offered, answered, abandoned, "
        "service level by the queue's formula, ASA, AHT, longest wait, abandon rate...) per "
        "queue for each period of the range (empty periods included) and in total. The longest "
        "range per interval: 31 days of 15min, 92 of hour, 366 of day, 731 of week, 1827 of "
        "month; at most 100,000 sets of figures (periods x queues) in one report.",
        parameters=[
            *_DATE_PARAMETERS,
            OpenApiParameter(
                "interval",
                OpenApiTypes.STR,
                enum=list(INTERVALS),
                description="The periods' length; default: day.",
            ),
        ],
        responses={
            200: serializers.QueueReportSerializer,
            400: _HISTORY_INVALID,
            401: _UNAUTHENTICATED,
            403: _HISTORY_FORBIDDEN,
            503: _REDIS_UNAVAILABLE,
        },
        tags=["history"],
    )
    def get(self, request: Request) -> Response:
        query, queues = self.question(request)
        # The range first: the queues of a range the interval cannot serve are not looked for.
        range_check(query.date_from, query.date_to, query.interval)
        if queues is None:
            queues = sorted(
                set(selectors.known_queue_numbers())
                | set(queues_with_calls(date_from=query.date_from, date_to=query.date_to))
            )
        report = queue_figures(
            queues=queues,
            date_from=query.date_from,
            date_to=query.date_to,
            interval=query.interval,
        )
        return Response(
            {
                "date_from": query.date_from.isoformat(),
                "date_to": query.date_to.isoformat(),
                "interval": report.interval,
                "time_zone": pbx_zone().key,
                "periods": [serializers.period_data(period) for period in report.periods],
                "queues": [
                    {
                        "queue": queue,
                        "rules": serializers.rules_data(report.totals[queue]),
                        "totals": serializers.figures_data(report.totals[queue]),
                        "periods": [serializers.figures_data(f) for f in report.figures[queue]],
                    }
                    for queue in queues
                ],
            }
        )


class AgentReportView(_HistoryView):
    parameters = AGENT_PARAMETERS

    @extend_schema(
        operation_id="reports_agents",
        summary="Each agent's answered queue calls and talk time over a range",
        description="The agent is whoever finally took the call (also after a transfer). At most "
        "366 days.",
        parameters=_DATE_PARAMETERS,
        responses={
            200: serializers.AgentReportSerializer,
            400: _HISTORY_INVALID,
            401: _UNAUTHENTICATED,
            403: _HISTORY_FORBIDDEN,
            503: _REDIS_UNAVAILABLE,
        },
        tags=["history"],
    )
    def get(self, request: Request) -> Response:
        query, queues = self.question(request)
        figures = agent_figures(date_from=query.date_from, date_to=query.date_to, queues=queues)
        return Response(
            {
                "date_from": query.date_from.isoformat(),
                "date_to": query.date_to.isoformat(),
                "time_zone": pbx_zone().key,
                "queues": queues,
                "agents": [serializers.agent_data(agent) for agent in figures],
            }
        )


class CallRecordListView(_HistoryView):
    parameters = CALL_PARAMETERS

    @extend_schema(
        operation_id="calls_list",
        summary="The stored call records of a range, newest first, a page at a time",
        description="Every record of the range for admins who name no queue (queue calls and "
        "the rest); a team lead's queue calls otherwise. At most 366 days; pages of up to 500 "
        "records (`next` and `previous` link the neighbours).",
        parameters=[
            *_DATE_PARAMETERS,
            OpenApiParameter("agent", OpenApiTypes.STR, description="Who answered (extension)."),
            OpenApiParameter(
                "outcome",
                OpenApiTypes.STR,
                enum=list(OUTCOMES),
                description="How the queue call ended.",
            ),
            OpenApiParameter(
                "caller", OpenApiTypes.STR, description="Any part of the caller's number."
            ),
            OpenApiParameter(
                "page", OpenApiTypes.INT, description="From 1 (default) to the last page."
            ),
            OpenApiParameter(
                "page_size",
                OpenApiTypes.INT,
                description=f"Records per page, 1 to {RECORDS_PAGE_SIZE_MAX}; default "
                f"{DEFAULT_PAGE_SIZE}.",
            ),
        ],
        responses={
            200: serializers.CallRecordPageSerializer,
            400: _HISTORY_INVALID,
            401: _UNAUTHENTICATED,
            403: _HISTORY_FORBIDDEN,
            503: _REDIS_UNAVAILABLE,
        },
        tags=["history"],
    )
    def get(self, request: Request) -> Response:
        query, queues = self.question(request)
        found = call_records_page(
            date_from=query.date_from,
            date_to=query.date_to,
            queues=queues,
            agent=query.agent,
            outcome=query.outcome,
            caller=query.caller,
            page=query.page,
            page_size=query.page_size,
        )
        if query.page > found.pages:
            raise QueryInvalid(
                gettext("There is no page %(page)d: the records fill %(pages)d page(s)")
                % {"page": query.page, "pages": found.pages}
            )
        zone = pbx_zone()
        return Response(
            {
                "count": found.total,
                "page": found.page,
                "page_size": found.page_size,
                "pages": found.pages,
                "next": _page_url(request, found.page + 1) if found.page < found.pages else None,
                "previous": _page_url(request, found.page - 1) if found.page > 1 else None,
                "results": [serializers.record_data(r, zone=zone) for r in found.records],
            }
        )


def _page_url(request: Request, page: int) -> str:
    """This request's URL on another page."""
    params = request.query_params.copy()
    params["page"] = str(page)
    return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")


# --- missed callers and call back ----------------------------------------------------------

# The call back's statuses: as the member actions', except that the PBX refusing the call is a
# bad number or extension (400); 409 is kept for "already served" and "being called back".
_CALL_BACK_STATUS_FOR_REASON = {
    **_STATUS_FOR_REASON,
    Reason.REFUSED: status.HTTP_400_BAD_REQUEST,
}
_MISSED_CALLER_PARAMETERS = ("queue", "format")
_ENTRY_PARAMETER = OpenApiParameter(
    "id",
    OpenApiTypes.INT64,
    OpenApiParameter.PATH,
    description="A missed caller's `id` from the list (the call record of their newest "
    "unanswered call; an older unanswered call of theirs today names them too).",
)


class MissedCallerListView(_AuthenticatedView):
    @extend_schema(
        operation_id="missed_callers_list",
        summary="Today's missed callers, newest first, with any call back in progress",
        description="Outside numbers whose queue calls today went unanswered (abandoned, timed "
        "out, voicemail, busy) and who have not been served since: answered in any queue, or "
        "called back with an answer (docs/kpi.md). From the call records, so a call appears "
        "up to CDR_POLL_SECONDS after it ended. Admins see every queue, team leads theirs.",
        parameters=[
            OpenApiParameter(
                "queue",
                _POSITIVE_NUMBER,
                description="Only this queue's missed callers (a team lead: one of theirs).",
            )
        ],
        responses={
            200: serializers.MissedCallerListSerializer,
            400: OpenApiResponse(
                serializers.ErrorSerializer,
                description="An unknown parameter, or a queue that is not a queue number.",
            ),
            401: _UNAUTHENTICATED,
            403: OpenApiResponse(
                serializers.ErrorSerializer,
                description="A viewer, or a team lead asking for another team's queue.",
            ),
            503: _REDIS_UNAVAILABLE,
        },
        tags=["missed callers"],
    )
    def get(self, request: Request) -> Response:
        unknown = sorted(set(request.query_params) - set(_MISSED_CALLER_PARAMETERS))
        if unknown:
            return _bad_request(
                gettext("Unknown parameter(s) %(unknown)s; this endpoint takes queue")
                % {"unknown": ", ".join(unknown)}
            )
        queue = None
        given = request.query_params.getlist("queue")
        if len(given) > 1 or given == [""]:
            return _bad_request(gettext("queue must be one queue number, given once"))
        text = request.query_params.get("queue", "")
        if text:
            digits = text.isascii() and text.isdigit() and len(text) <= 10
            if not (digits and 0 < int(text) <= _MAX_QUEUE):
                return _bad_request(
                    gettext("queue must be a queue number, not %(text)r") % {"text": text}
                )
            queue = int(text)
        queues = missed_caller_queues(user=request.user, queue=queue)
        zone = pbx_zone()
        entries = missed_callers_list(user=request.user, queues=queues)
        return Response(
            {
                "day": local_today(timezone.now(), zone).isoformat(),
                "time_zone": zone.key,
                "default_extension": call_back_default_get(user=request.user),
                "callers": [entry.as_json(zone=zone) for entry in entries],
            }
        )


class MissedCallerCallBackView(_AuthenticatedView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="missed_callers_call_back",
        summary="Call a missed caller back: your extension rings, then the PBX dials them",
        description="One call/create through the PBX budget's action lane, audited like the "
        'member actions. The PBX answers "Call queued" whatever then happens: the extension '
        "rings first and, once picked up, the PBX dials the number. While it may be going on "
        "the number is claimed (one call back per number at a time, for everyone): until the "
        "call records show the call's outcome, or CALLBACK_CLAIM_SECONDS (10 minutes) pass. "
        "The extension is remembered as your default for the next call back. Browsers "
        "(session) are audited as the console, tokens as the API.",
        request=serializers.CallBackRequestSerializer,
        parameters=[_ENTRY_PARAMETER, _RETRY_AFTER_HEADER],
        responses={
            200: OpenApiResponse(
                serializers.CallBackOutcomeSerializer,
                description="The PBX queued the call: the extension is ringing.",
            ),
            400: OpenApiResponse(
                serializers.CallBackProblemSerializer,
                description="No extension given; an extension the PBX does "
                "not have or whose phone is not registered; a number that is not an outside "
                "number; or the PBX refused the call (the outcome's fields are then set).",
            ),
            401: _UNAUTHENTICATED,
            403: OpenApiResponse(
                serializers.ErrorSerializer,
                description="CSRF token missing, a viewer, or a team lead calling back a "
                "missed caller of another team's queue (no PBX request was spent).",
            ),
            404: OpenApiResponse(
                serializers.CallBackProblemSerializer,
                description="No missed call with this id, or not today's.",
            ),
            409: OpenApiResponse(
                serializers.CallBackProblemSerializer,
                description="Answered or called back since (nothing to do), or being called "
                "back already — by you (a second click) or by someone else: `call_back` says "
                "who, from which extension, since when. Nothing was sent.",
            ),
            429: OpenApiResponse(
                serializers.ErrorSerializer,
                description="More than ACTIONS_PER_USER_PER_MINUTE actions a minute from this "
                "user (call backs count); nothing was sent; retry after Retry-After seconds.",
            ),
            502: OpenApiResponse(
                serializers.CallBackProblemSerializer,
                description="The PBX is unreachable or answered with an error.",
            ),
            503: OpenApiResponse(
                serializers.CallBackProblemSerializer,
                description="The PBX has blocked us, the request budget is used up, or the "
                "wallboard cannot record the call back or does not know the extensions yet: "
                "nothing was sent; retry after Retry-After seconds.",
            ),
            504: OpenApiResponse(
                serializers.CallBackProblemSerializer,
                description="The PBX did not answer in time: the phone may ring anyway, and "
                "the number stays claimed.",
            ),
        },
        tags=["missed callers"],
    )
    def post(self, request: Request, id: int) -> Response:
        data = request.data
        if not isinstance(data, Mapping):
            return _bad_request(gettext('Send a JSON object such as {"extension": 201}.'))
        extension = data.get("extension")
        if extension is None:
            return _bad_request(gettext("Choose the extension to call back from."))
        if isinstance(extension, bool) or not isinstance(extension, int):
            return _bad_request(
                gettext("extension must be an extension number, not %(value)r")
                % {"value": extension}
            )
        try:
            outcome = missed_caller_call_back(
                user=request.user,
                entry=id,
                extension=extension,
                # A browser's session is the console's page; a token is a program.
                source="api" if request.auth is not None else "console",
            )
        except ActionForbidden as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except ActionInvalid as exc:
            return _bad_request(str(exc))
        except CallBackNotFound as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        except CallBackClaimed as exc:
            body = {"detail": str(exc), "call_back": exc.claim.as_json()}
            return Response(body, status=status.HTTP_409_CONFLICT)
        except CallBackConflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except ActionThrottled as exc:
            response = Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
            response["Retry-After"] = str(exc.retry_after)
            return response
        body = {
            "entry": outcome.entry,
            "queue": outcome.queue,
            "extension": outcome.extension,
            "number": outcome.number,
            "number_display": outcome.number_display,
            "ok": outcome.ok,
            "reason": outcome.reason.value,
            "code": outcome.code,
            "detail": outcome.detail,
            "message": outcome.message,
            "retry_after": outcome.retry_after,
        }
        response = Response(
            serializers.CallBackOutcomeSerializer(body).data,
            status=_CALL_BACK_STATUS_FOR_REASON[outcome.reason],
        )
        if outcome.retry_after is not None:
            response["Retry-After"] = str(outcome.retry_after)
        return response


def _bad_request(detail: str) -> Response:
    return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)

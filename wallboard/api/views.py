"""The JSON API: read the snapshots the poller keeps in Redis, and call the control services.

Views stay thin: reads come from ``wallboard.live.selectors`` (never a PBX request), actions go
through ``wallboard.control.services.member_action``. Browsers authenticate with the session
(DRF enforces CSRF on unsafe methods for session users); programs with ``Authorization: Token``.
"""

from __future__ import annotations

import logging

import redis
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
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
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pbxapi import errors as pbx
from wallboard.api import serializers
from wallboard.api.tokens import ApiTokenAuthentication
from wallboard.control import access
from wallboard.control.services import (
    MAX_NUMBER,
    ActionForbidden,
    ActionInvalid,
    ActionOutcome,
    ActionThrottled,
    Reason,
    member_action,
)
from wallboard.live import selectors

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


class _ApiView(APIView):
    def handle_exception(self, exc: Exception) -> Response:
        # Snapshots, PBX state and budget live in Redis: without it there is nothing to serve,
        # which is a temporary 503 rather than a 500 that looks like a bug.
        if isinstance(exc, redis.RedisError | pbx.BudgetUnavailable):
            logger.warning("API %s: Redis unavailable: %s", self.request.path, exc)
            response = Response(
                {"detail": gettext("The wallboard's Redis is unavailable.")},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
            response["Retry-After"] = str(_REDIS_RETRY_AFTER_SECONDS)
            return response
        return super().handle_exception(exc)


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

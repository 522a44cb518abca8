"""Agent actions on queue members: pause, unpause, add, remove.

One way in for the websocket and the HTTP API: ``member_action`` validates, checks permission
and the user's action throttle (before any PBX request is spent), records the attempt as pending,
sends the action through the budget's action lane, completes the record with the outcome, and
on success shows the result on every board at once: a pause or unpause straight from the PBX's
answer, an add or remove by fetching the queue again. It is synchronous and may wait on the PBX
for seconds: callers on an event loop run it on a thread of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import redis
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from pbxapi import errors as pbx
from wallboard.control import access
from wallboard.control.models import MemberAction
from wallboard.live import pbx as live_pbx
from wallboard.live import services as live_services
from wallboard.live import store as live_store

if TYPE_CHECKING:
    from pbxapi.models import ActionResult

logger = logging.getLogger(__name__)

ACTIONS = frozenset(MemberAction.Action.values)
SOURCES = frozenset(MemberAction.Source.values)

# How long an action may wait for a slot in the shared budget. Long enough to ride out a burst of
# polls (the action lane may use the reserve), short enough that a person clicking "pause" gets an
# answer instead of a spinner.
ACTION_MAX_WAIT_SECONDS = 3.0

# Queue and extension numbers are stored in PositiveIntegerField, which PostgreSQL caps here.
MAX_NUMBER = 2_147_483_647

# Our Redis being down is usually a restart: worth trying again soon, not at once.
_UNAVAILABLE_RETRY_SECONDS = 5

# Where pbx_outcome_record files what an action taught us about the PBX's health.
_PBX_STATE_SOURCE = "action"

# The PBX's words for queue actions (API_NOTES.md, routes 10-13), marked for translation so a
# Slovak supervisor reads them in Slovak; anything else the PBX says is shown as it said it.
_PBX_WORDS = {
    "Added to queue": _("Added to queue"),
    "Removed from queue": _("Removed from queue"),
    "Paused": _("Paused"),
    "Unpaused": _("Unpaused"),
    "Already there": _("Already there"),
    "Not there": _("Not there"),
    "No such queue": _("No such queue"),
    "Unknown status": _("Unknown status"),
}


class ActionError(Exception):
    """An action refused before any PBX request was spent."""


class ActionInvalid(ActionError, ValueError):
    """The queue, extension, action or source is not acceptable."""


class ActionForbidden(ActionError, PermissionError):
    """The user may not act on that queue."""


class ActionThrottled(ActionError):
    """The user made more actions than ACTIONS_PER_USER_PER_MINUTE; ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Reason(StrEnum):
    """Why an action ended the way it did; the API maps these to HTTP statuses."""

    ACCEPTED = "accepted"  # the PBX did it
    REFUSED = "refused"  # the PBX answered and said no (Already there, No such queue...)
    BLOCKED = "blocked"  # the PBX has blocked us for the rate limit; nothing was sent
    BUDGET_EXHAUSTED = "budget_exhausted"  # no budget slot within the wait; nothing was sent
    TIMEOUT = "timeout"  # sent, but no answer in time: the action may or may not have happened
    UNREACHABLE = "unreachable"  # the PBX could not be reached
    PBX_ERROR = "pbx_error"  # the PBX answered something wrong (5xx, HTML, bad credentials...)
    UNAVAILABLE = "unavailable"  # our own Redis or database is down; nothing was sent
    INVALID = "invalid"  # the client refused the arguments before sending


@dataclass(frozen=True)
class ActionOutcome:
    """What happened to one action.

    ``code``/``detail`` are the PBX's answer as it gave it (body code or HTTP status and its
    words, or our English description when no answer came); ``message`` is the same in words for
    the requester, in the active language. ``retry_after`` (seconds) is set when trying again
    later can succeed (blocked, budget exhausted, Redis unavailable).
    """

    queue: int
    extension: int
    action: str
    ok: bool
    code: int | None
    detail: str
    message: str
    reason: Reason = Reason.ACCEPTED
    retry_after: int | None = None


def action_longest_seconds() -> float:
    """The longest an action can take: the wait for a budget slot plus the PBX's timeouts, and
    a margin. A record still pending after this never got its outcome (the process died)."""
    return ACTION_MAX_WAIT_SECONDS + settings.PBX_CONNECT_TIMEOUT + settings.PBX_READ_TIMEOUT + 30.0


def member_action(*, user, queue: int, extension: int, action: str, source: str) -> ActionOutcome:
    """Pause/unpause/add/remove ``extension`` in ``queue`` on the PBX, on behalf of ``user``.

    Raises ActionInvalid, ActionForbidden or ActionThrottled before any PBX request; otherwise
    returns the outcome (never raises a PBX error) with the attempt in the audit trail.
    """
    queue = _number(queue, what="queue")
    extension = _number(extension, what="extension")
    _check_choice(action, ACTIONS, what="action")
    _check_choice(source, SOURCES, what="source")
    if not access.can_act_on_queue(user, queue):
        raise ActionForbidden(
            gettext("You may not change the members of queue %(queue)s.") % {"queue": queue}
        )
    subject = {"queue": queue, "extension": extension, "action": action}
    try:
        _throttle(user)
        record = _audit_open(user=user, source=source, **subject)
    except (redis.RedisError, DatabaseError) as error:
        # No audit record, no action: nothing is sent that the trail could not show.
        logger.warning("Action refused, the wallboard cannot record it: %r", error)
        return _unrecordable(**subject)
    outcome = _outcome_unexpected(**subject)
    try:
        outcome = _send(**subject)
    finally:
        # Completed even when something unforeseen escapes, so the trail never misses an attempt.
        _audit_close(record, outcome)
    if outcome.ok:
        _show_after_action(**subject)
    return outcome


def _throttle(user) -> None:
    """At most ACTIONS_PER_USER_PER_MINUTE actions per user, across every process: a flood of
    clicks or a script cannot spend the PBX budget the boards' polls need."""
    wait = live_store.rate_take(
        f"actions:user:{user.pk}", limit=settings.ACTIONS_PER_USER_PER_MINUTE, window=60.0
    )
    if wait is not None:
        raise ActionThrottled(
            gettext("Too many actions; try again in %(seconds)s s.")
            % {"seconds": _whole_seconds(wait)},
            retry_after=_whole_seconds(wait),
        )


def _number(value: object, *, what: str) -> int:
    """A positive whole number; digit strings are accepted because websocket JSON may carry them."""
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    else:
        number = None
    if number is None or not 0 < number <= MAX_NUMBER:
        raise ActionInvalid(
            gettext("The %(what)s must be a positive whole number, not %(value)r.")
            % {"what": what, "value": value}
        )
    return number


def _check_choice(value: object, choices: frozenset[str], *, what: str) -> None:
    if not isinstance(value, str) or value not in choices:  # websocket JSON may carry a list
        raise ActionInvalid(
            gettext("The %(what)s must be one of %(choices)s, not %(value)r.")
            % {"what": what, "choices": ", ".join(sorted(choices)), "value": value}
        )


def _send(*, queue: int, extension: int, action: str) -> ActionOutcome:
    """Spend one action-lane request on the action and turn whatever happens into an outcome."""
    client = live_pbx.pbx_client()
    method = {
        "pause": client.queue_pause,
        "unpause": client.queue_unpause,
        "add": client.queue_add,
        "remove": client.queue_remove,
    }[action]
    try:
        result = method(queue, extension, priority="action", max_wait=ACTION_MAX_WAIT_SECONDS)
    except pbx.PBXError as error:
        _record_pbx_state(error=error)
        return _outcome_from_error(error, queue=queue, extension=extension, action=action)
    _record_pbx_state(error=None)
    return _outcome_from_result(result, queue=queue, extension=extension, action=action)


def _outcome_from_result(result: ActionResult, **subject) -> ActionOutcome:
    return ActionOutcome(
        **subject,
        ok=True,
        code=result.code,
        detail=result.detail,
        message=_pbx_words(result.detail),
        reason=Reason.ACCEPTED,
    )


def _outcome_from_error(error: pbx.PBXError, **subject) -> ActionOutcome:
    """Every pbxapi error as an outcome: the PBX's words where it gave some, ours otherwise."""
    if isinstance(error, pbx.QueueActionRefused):
        return ActionOutcome(
            **subject,
            ok=False,
            code=error.code,
            detail=error.detail,
            message=_pbx_words(error.detail),
            reason=Reason.REFUSED,
        )
    if isinstance(error, pbx.Blocked):
        until = _pbx_local_time(error.until)
        return _failure(
            error,
            subject,
            reason=Reason.BLOCKED,
            code=403,
            message=gettext("PBX blocked until %(time)s") % {"time": until},
            retry_after=_whole_seconds(error.seconds_left),
        )
    if isinstance(error, pbx.BudgetExhausted):
        return _failure(
            error,
            subject,
            reason=Reason.BUDGET_EXHAUSTED,
            message=gettext(
                "The PBX is busy (request budget used up); try again in a few seconds."
            ),
            retry_after=_whole_seconds(error.retry_after),
        )
    if isinstance(error, pbx.BudgetUnavailable):
        return _failure(
            error,
            subject,
            reason=Reason.UNAVAILABLE,
            message=gettext("The wallboard cannot reach its request budget; nothing was sent."),
            retry_after=_UNAVAILABLE_RETRY_SECONDS,
        )
    if isinstance(error, pbx.PBXTimeout):
        return _failure(
            error,
            subject,
            reason=Reason.TIMEOUT,
            message=gettext(
                "The PBX did not answer in time; the action may or may not have been done."
            ),
        )
    if isinstance(error, pbx.Unreachable):
        return _failure(
            error, subject, reason=Reason.UNREACHABLE, message=gettext("The PBX is unreachable.")
        )
    if isinstance(error, pbx.InvalidArgument):
        return _failure(error, subject, reason=Reason.INVALID, message=str(error))
    if isinstance(error, pbx.AuthenticationFailed):
        return _failure(
            error,
            subject,
            reason=Reason.PBX_ERROR,
            message=gettext("The PBX refused the wallboard's API login; check its PBX settings."),
        )
    return _failure(
        error,
        subject,
        reason=Reason.PBX_ERROR,
        message=gettext("The PBX answered with an error: %(error)s") % {"error": error},
    )


def _failure(
    error: pbx.PBXError,
    subject: dict,
    *,
    reason: Reason,
    message: str,
    code: int | None = None,
    retry_after: int | None = None,
) -> ActionOutcome:
    return ActionOutcome(
        **subject,
        ok=False,
        code=code if code is not None else error.status,
        detail=str(error),
        message=message,
        reason=reason,
        retry_after=retry_after,
    )


def _outcome_unexpected(**subject) -> ActionOutcome:
    """What the audit says if something unforeseen (a bug) escapes before an outcome exists."""
    return ActionOutcome(
        **subject,
        ok=False,
        code=None,
        detail="Internal error before the PBX answered",
        message=gettext("Internal error"),
        reason=Reason.PBX_ERROR,
    )


def _pbx_words(detail: str) -> str:
    words = _PBX_WORDS.get(detail.strip())
    return str(words) if words is not None else detail


def _pbx_local_time(timestamp: float) -> str:
    """HH:MM in the PBX's (and the call centre's) local time, Europe/Bratislava by default."""
    return datetime.fromtimestamp(timestamp, ZoneInfo(settings.PBX_TIME_ZONE)).strftime("%H:%M")


def _whole_seconds(seconds: float) -> int:
    """Seconds rounded up, at least 1: a Retry-After of 0 invites an immediate, useless retry."""
    return max(1, int(-(-seconds // 1)))


def _record_pbx_state(*, error: Exception | None) -> None:
    """Tell the PBX state what this action learned (a refusal is an answer, so the PBX is up;
    no budget slot says nothing about it); failing to record must not lose the outcome."""
    try:
        live_services.pbx_outcome_record(source=_PBX_STATE_SOURCE, error=error)
    except Exception:
        logger.exception("Could not record the PBX outcome of a member action")


def _unrecordable(**subject) -> ActionOutcome:
    return ActionOutcome(
        **subject,
        ok=False,
        code=None,
        detail="The wallboard could not record the action; nothing was sent",
        message=gettext("The wallboard cannot record the action right now; nothing was sent."),
        reason=Reason.UNAVAILABLE,
        retry_after=_UNAVAILABLE_RETRY_SECONDS,
    )


def _audit_open(*, user, source: str, queue: int, extension: int, action: str) -> MemberAction:
    """The attempt, recorded before anything is sent (``ok`` None: pending)."""
    return MemberAction.objects.create(
        user=user,  # the permission check let only active, logged-in users this far
        username=user.get_username(),
        source=source,
        queue=queue,
        extension=extension,
        action=action,
        ok=None,
    )


def _audit_close(record: MemberAction, outcome: ActionOutcome) -> None:
    """Complete the record with the outcome. A failure here is logged, never raised: the PBX
    has acted (or refused), and an error would invite the user to click again."""
    record.ok = outcome.ok
    record.reason = outcome.reason.value
    record.code = outcome.code
    record.detail = outcome.detail[: MemberAction._meta.get_field("detail").max_length]
    record.finished = timezone.now()
    try:
        record.save(update_fields=["ok", "reason", "code", "detail", "finished"])
    except Exception:
        logger.exception(
            "Could not complete audit record %s (%s %s in %s: %s); it stays pending",
            record.pk,
            outcome.action,
            outcome.extension,
            outcome.queue,
            outcome.reason.value,
        )


def _show_after_action(*, queue: int, extension: int, action: str) -> None:
    """Rebuild and push the queue's snapshot now, so every board shows the change at once.

    The action already happened; a failure here only delays the boards until the next poll.
    """
    try:
        live_services.member_action_show(queue=queue, extension=extension, action=action)
    except Exception:
        logger.warning("Showing the result of an action on queue %s failed", queue, exc_info=True)

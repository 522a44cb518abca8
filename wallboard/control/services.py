"""Agent actions on queue members (pause, unpause, add, remove) and calling missed callers back.

One way in for the websocket and the HTTP API: ``member_action`` validates, checks permission
and the user's action throttle (before any PBX request is spent), records the attempt as pending,
sends the action through the budget's action lane, completes the record with the outcome, and
on success shows the result on every board at once: a pause or unpause straight from the PBX's
answer, an add or remove by fetching the queue again. It is synchronous and may wait on the PBX
for seconds: callers on an event loop run it on a thread of their own.

``missed_caller_call_back`` does the same for a click-to-call to a missed caller, and first
takes the number's claim (``CallBackClaim``: one call back per number at a time, across every
process), so a double click or two team leads at once place one call.
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
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from pbxapi import errors as pbx
from wallboard.control import access, selectors
from wallboard.control.callbacks import END_NOT_SENT, number_dialable, number_display
from wallboard.control.models import CallBackClaim, CallBackDefault, MemberAction
from wallboard.history.callers import number_key
from wallboard.history.intervals import local_today
from wallboard.history.models import CallRecord
from wallboard.history.records import UNANSWERED_OUTCOMES
from wallboard.history.selectors import call_record_get, missed_callers, pbx_zone
from wallboard.live import pbx as live_pbx
from wallboard.live import services as live_services
from wallboard.live import store as live_store
from wallboard.live.selectors import extensions_get

if TYPE_CHECKING:
    from pbxapi.models import ActionResult

logger = logging.getLogger(__name__)

# The member actions; a call back is audited beside them but has its own way in.
ACTIONS = frozenset(MemberAction.Action.values) - {MemberAction.Action.CALL_BACK}
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


def _audit_close(record: MemberAction, outcome: ActionOutcome | CallBackOutcome) -> None:
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


# --- calling missed callers back ---------------------------------------------------------------


class CallBackNotFound(ActionError, LookupError):
    """The entry names no missed call of today: unknown, not a missed queue call, or another
    day's."""


class CallBackConflict(ActionError):
    """The missed caller cannot be called back now; nothing was sent."""


class CallBackServed(CallBackConflict):
    """The caller has been answered, or called back with an answer, since that missed call."""


class CallBackClaimed(CallBackConflict):
    """Someone (perhaps this user, a click ago) is calling this number back already."""

    def __init__(self, message: str, *, claim: selectors.CallBackInProgress) -> None:
        super().__init__(message)
        self.claim = claim


@dataclass(frozen=True)
class CallBackOutcome:
    """What happened to one call back; fields as in ``ActionOutcome``. ``entry`` is the missed
    call named, ``number`` what was dialled (``number_display``: written for reading)."""

    entry: int
    queue: int
    extension: int
    number: str
    number_display: str
    ok: bool
    code: int | None
    detail: str
    message: str
    reason: Reason = Reason.ACCEPTED
    retry_after: int | None = None

    @property
    def action(self) -> str:
        return MemberAction.Action.CALL_BACK.value


# After these the PBX placed no call (it said no, or was never asked; an unreachable PBX is
# almost always one the request never reached): the number is free to be called back at once.
# After a timeout or a broken answer the phone may be ringing: the claim holds until the records
# or CALLBACK_CLAIM_SECONDS say otherwise.
_NOTHING_PLACED = frozenset(
    {
        Reason.REFUSED,
        Reason.BLOCKED,
        Reason.BUDGET_EXHAUSTED,
        Reason.UNAVAILABLE,
        Reason.UNREACHABLE,
        Reason.INVALID,
    }
)
# Call records are keyed by the PBX's id, a BigIntegerField.
_MAX_RECORD_ID = 9_223_372_036_854_775_807
# Takes of a claim that found an ended one in the way (and ended it) before giving up.
_CLAIM_ATTEMPTS = 3


def missed_caller_call_back(
    *, user, entry: int, extension: int | None, source: str
) -> CallBackOutcome:
    """Ring ``extension``, then have the PBX dial the missed caller ``entry`` names (the call
    record id of one of their unanswered calls today), on behalf of ``user``.

    ``extension`` None means the one the user last called back from. Raises ActionInvalid (no,
    an unknown or an unregistered extension; a number that cannot be dialled), ActionForbidden
    (not the user's queue), CallBackNotFound, CallBackServed, CallBackClaimed or ActionThrottled
    before any PBX request; otherwise returns the outcome (never raises a PBX error), with the
    attempt in the audit trail and the number claimed while the call may be going on.
    """
    entry = _entry_id(entry)
    if extension is None:
        extension = selectors.call_back_default_get(user=user)
        if extension is None:
            raise ActionInvalid(gettext("Choose the extension to call back from."))
    extension = _number(extension, what="extension")
    _check_choice(source, SOURCES, what="source")
    if not access.is_active_user(user):
        raise ActionForbidden(gettext("Log in to call missed callers back."))
    record = call_record_get(id=entry)
    if record is None or not _is_missed_call(record):
        raise CallBackNotFound(
            gettext("There is no missed call %(entry)s to call back.") % {"entry": entry}
        )
    if not access.can_act_on_queue(user, record.queue):
        raise ActionForbidden(
            gettext("You may not call back the missed callers of queue %(queue)s.")
            % {"queue": record.queue}
        )
    caller = _still_missed(record)
    number = number_dialable(caller)
    if number is None:
        raise ActionInvalid(
            gettext("%(number)s is not an outside number the PBX can dial.") % {"number": caller}
        )
    subject = {
        "entry": entry,
        "queue": record.queue,
        "extension": extension,
        "number": number,
        "number_display": number_display(number),
    }
    try:
        if not _extension_check(extension):
            return _call_back_failure(
                subject,
                reason=Reason.UNAVAILABLE,
                detail="The PBX's extension list is not known yet; nothing was sent",
                message=gettext("The PBX's extensions are not known yet; try again in a minute."),
                retry_after=_whole_seconds(settings.POLL_EXTENSIONS_SECONDS),
            )
        _throttle(user)
        audit, claim = _claim_take(user=user, source=source, key=number_key(number), **subject)
    except (redis.RedisError, DatabaseError) as error:
        # No audit record and no claim, no call: nothing is sent that the trail could not show
        # or that another team lead could place a second time.
        logger.warning("Call back refused, the wallboard cannot record it: %r", error)
        return _call_back_failure(
            subject,
            reason=Reason.UNAVAILABLE,
            detail="The wallboard could not record the call back; nothing was sent",
            message=gettext(
                "The wallboard cannot record the call back right now; nothing was sent."
            ),
            retry_after=_UNAVAILABLE_RETRY_SECONDS,
        )
    outcome = _call_back_failure(
        subject,
        reason=Reason.PBX_ERROR,
        detail="Internal error before the PBX answered",
        message=gettext("Internal error"),
    )
    try:
        outcome = _call_back_send(subject)
    finally:
        _audit_close(audit, outcome)
        if outcome.reason in _NOTHING_PLACED:
            _claim_end(claim, END_NOT_SENT)
    _call_back_default_set(user=user, extension=extension)
    return outcome


def _entry_id(value: object) -> int:
    """A call record id (the PBX's: up to a 64-bit number); anything else names no entry."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_RECORD_ID:
        return value
    raise CallBackNotFound(
        gettext("There is no missed call %(entry)s to call back.") % {"entry": value}
    )


def _is_missed_call(record: CallRecord) -> bool:
    """A queue call from an outside number that nobody answered."""
    return (
        record.queue is not None
        and record.outcome in UNANSWERED_OUTCOMES
        and number_key(record.caller) is not None
    )


def _still_missed(record: CallRecord) -> str:
    """The number to call back for this missed call (as the caller's newest attempt wrote it).
    Raises CallBackNotFound for another day's call and CallBackServed when the caller has been
    served since it."""
    now = timezone.now()
    if record.day != local_today(now, pbx_zone()):
        raise CallBackNotFound(
            gettext(
                "The missed call %(entry)s is not today's: only today's missed callers are "
                "called back from the list."
            )
            % {"entry": record.id}
        )
    key = number_key(record.caller)
    current = next((m for m in missed_callers(now=now) if number_key(m.caller) == key), None)
    if current is None or record.when < current.first_when:
        raise CallBackServed(
            gettext(
                "%(number)s has been answered or called back since this missed call; no call "
                "back is needed."
            )
            % {"number": number_display(record.caller)}
        )
    return current.caller


def _extension_check(extension: int) -> bool:
    """Whether the PBX's extension list is known (False: not fetched yet). Raises ActionInvalid
    for an extension the PBX does not have or whose phone is not registered (it cannot ring)."""
    extensions = {row["extension"]: row for row in extensions_get()}
    if not extensions:
        return False
    found = extensions.get(extension)
    if found is None:
        raise ActionInvalid(
            gettext("Extension %(extension)s is not one of the PBX's extensions.")
            % {"extension": extension}
        )
    if not found["registered"]:
        raise ActionInvalid(
            gettext("Extension %(extension)s has no phone registered, so it cannot ring.")
            % {"extension": extension}
        )
    return True


def _claim_take(
    *,
    user,
    source: str,
    key: str,
    entry: int,
    queue: int,
    extension: int,
    number: str,
    number_display: str,
) -> tuple[MemberAction, CallBackClaim]:
    """The pending audit record and the number's claim, written together or not at all.

    The claim's partial unique constraint (one open claim per number) decides between
    processes that try at once; the loser finds the winner's claim and raises CallBackClaimed.
    A claim in the way that the records or the clock have ended is ended, and taking is tried
    again."""
    name = user.get_full_name().strip() or user.get_username()
    for _attempt in range(_CLAIM_ATTEMPTS):
        try:
            with transaction.atomic():
                audit = MemberAction.objects.create(
                    user=user,
                    username=user.get_username(),
                    source=source,
                    queue=queue,
                    extension=extension,
                    action=MemberAction.Action.CALL_BACK,
                    number=number,
                    ok=None,
                )
                claim = CallBackClaim.objects.create(
                    number_key=key,
                    number=number,
                    queue=queue,
                    record=entry,
                    user=user,
                    name=name,
                    extension=extension,
                    started=timezone.now(),
                    action=audit,
                )
            return audit, claim
        except IntegrityError:
            held = CallBackClaim.objects.filter(number_key=key, ended__isnull=True).first()
            if held is None:
                continue  # it ended between our insert and this read
            [(_held, reason)] = selectors.claims_judged(claims=[held], now=timezone.now())
            if reason is None:
                raise _claimed(held, user=user, number_display=number_display) from None
            _claim_end(held, reason)
    raise DatabaseError(f"The claim on {number} kept changing hands; try again")


def _claimed(claim: CallBackClaim, *, user, number_display: str) -> CallBackClaimed:
    progress = selectors.claim_in_progress(claim, user=user)
    since = timezone.localtime(claim.started).strftime("%H:%M")
    if progress.by_you:
        message = gettext(
            "%(number)s is already being called back by you since %(time)s (extension "
            "%(extension)s)."
        ) % {"number": number_display, "time": since, "extension": claim.extension}
    else:
        message = gettext("%(number)s is being called back by %(name)s since %(time)s.") % {
            "number": number_display,
            "name": claim.name,
            "time": since,
        }
    return CallBackClaimed(message, claim=progress)


def _claim_end(claim: CallBackClaim, reason: str) -> None:
    """End an open claim (once: a claim another process ended keeps its reason). A failure is
    logged: the claim then ends by the records or the clock."""
    try:
        CallBackClaim.objects.filter(pk=claim.pk, ended__isnull=True).update(
            ended=timezone.now(), end_reason=reason
        )
    except DatabaseError:
        logger.exception("Could not end the call-back claim %s (%s)", claim.pk, reason)


def _call_back_send(subject: dict) -> CallBackOutcome:
    """Spend one action-lane request on call/create and turn whatever happens into an outcome."""
    client = live_pbx.pbx_client()
    try:
        result = client.call_create(
            subject["extension"],
            subject["number"],
            priority="action",
            max_wait=ACTION_MAX_WAIT_SECONDS,
        )
    except pbx.PBXError as error:
        _record_pbx_state(error=error)
        return _call_back_from_error(error, subject)
    _record_pbx_state(error=None)
    return CallBackOutcome(
        **subject,
        ok=True,
        code=result.code,
        detail=result.detail,
        # The PBX says "Call queued" whatever then happens (API_NOTES.md, route 1).
        message=gettext(
            "Call queued: extension %(extension)s rings first; when it is picked up, the PBX "
            "dials %(number)s."
        )
        % {"extension": subject["extension"], "number": subject["number_display"]},
        reason=Reason.ACCEPTED,
    )


def _call_back_from_error(error: pbx.PBXError, subject: dict) -> CallBackOutcome:
    """A PBX error as a call back's outcome: the PBX's "no" (an error code in its answer, a
    400 or 404) is a refusal of the number or extension; the rest as for member actions."""
    if type(error) is pbx.PBXError or isinstance(error, pbx.MissingParameter | pbx.NotFound):
        return _call_back_failure(
            subject,
            reason=Reason.REFUSED,
            code=error.status,
            detail=str(error),
            message=gettext("The PBX refused the call: %(error)s") % {"error": error},
        )
    general = _outcome_from_error(
        error, queue=subject["queue"], extension=subject["extension"], action="call_back"
    )
    message = general.message
    minutes = max(1, round(settings.CALLBACK_CLAIM_SECONDS / 60))
    if general.reason is Reason.TIMEOUT:
        message = gettext(
            "The PBX did not answer in time: the call may or may not have been placed, so the "
            "number stays yours for %(minutes)s minutes."
        ) % {"minutes": minutes}
    elif general.reason is Reason.PBX_ERROR:
        message = gettext(
            "%(problem)s The phone may ring anyway, so the number stays yours for %(minutes)s "
            "minutes."
        ) % {"problem": general.message, "minutes": minutes}
    return _call_back_failure(
        subject,
        reason=general.reason,
        code=general.code,
        detail=general.detail,
        message=message,
        retry_after=general.retry_after,
    )


def _call_back_failure(
    subject: dict,
    *,
    reason: Reason,
    detail: str,
    message: str,
    code: int | None = None,
    retry_after: int | None = None,
) -> CallBackOutcome:
    return CallBackOutcome(
        **subject,
        ok=False,
        code=code,
        detail=detail,
        message=message,
        reason=reason,
        retry_after=retry_after,
    )


def _call_back_default_set(*, user, extension: int) -> None:
    """Remember the extension as the user's next default; failing to is only logged."""
    try:
        CallBackDefault.objects.update_or_create(user=user, defaults={"extension": extension})
    except DatabaseError:
        logger.warning("Could not remember extension %s for %s", extension, user, exc_info=True)

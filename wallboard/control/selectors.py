"""Reads for the call back of missed callers: today's missed callers a user may see, each with
the call back in progress on its number, and the extension the user calls back from.

Missed callers come from the call history (``wallboard.history.selectors.missed_callers``);
claims (``CallBackClaim``) are judged against the history's outgoing rows
(``callbacks.claim_end``) when read, so a claim the records or the clock have ended shows as
ended at once, before anything writes that down. Never a PBX request.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django.utils.translation import gettext

from wallboard.control import access
from wallboard.control.callbacks import (
    CLAIM_CLOCK_SLACK,
    OutgoingRow,
    claim_end,
    number_display,
)
from wallboard.control.models import CallBackClaim, CallBackDefault, MemberAction
from wallboard.history.callers import number_key
from wallboard.history.selectors import missed_callers, outgoing_calls_since


@dataclass(frozen=True)
class CallBackInProgress:
    """Who is calling a missed caller back, from which extension, since when."""

    name: str
    by_you: bool
    since: datetime
    extension: int

    def as_json(self) -> dict:
        """The API's and the console's shape (``CallBackInProgressSerializer``)."""
        return {
            "by": self.name,
            "by_you": self.by_you,
            "since": self.since.isoformat(),
            "extension": self.extension,
        }


@dataclass(frozen=True)
class MissedCallerEntry:
    """One line of the missed-callers list, as a user sees it."""

    id: int  # the newest attempt's call record: what a call back names
    number: str  # as the PBX wrote it
    number_display: str  # written for reading (callbacks.number_display)
    queue: int
    when: datetime
    first_when: datetime
    wait: int | None
    outcome: str
    attempts: int
    can_call_back: bool
    call_back: CallBackInProgress | None

    def as_json(self, *, zone: tzinfo) -> dict:
        """The API's and the console's shape (``MissedCallerSerializer``), times in ``zone``."""
        return {
            "id": self.id,
            "number": self.number,
            "number_display": self.number_display,
            "queue": self.queue,
            "when": self.when.astimezone(zone).isoformat(),
            "first_when": self.first_when.astimezone(zone).isoformat(),
            "wait": self.wait,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "can_call_back": self.can_call_back,
            "call_back": None if self.call_back is None else self.call_back.as_json(),
        }


def claim_timeout() -> timedelta:
    return timedelta(seconds=settings.CALLBACK_CLAIM_SECONDS)


def missed_caller_queues(*, user, queue: int | None = None) -> set[int] | None:
    """The queues whose missed callers ``user`` may read, narrowed to ``queue`` when given
    (None: every queue). Raises PermissionDenied for viewers and for another team's queue."""
    allowed = access.reportable_queues(user)
    if allowed is not None and not allowed:
        raise PermissionDenied(gettext("Only admins and team leads may see missed callers."))
    if queue is None:
        return allowed
    if allowed is not None and queue not in allowed:
        raise PermissionDenied(
            gettext("You may not see the missed callers of queue %(queue)s.") % {"queue": queue}
        )
    return {queue}


def missed_callers_list(
    *, user, queues: Collection[int] | None, now: datetime | None = None
) -> list[MissedCallerEntry]:
    """Today's missed callers of ``queues`` (None: every queue), newest first, each with the
    call back in progress on its number. ``queues`` comes from ``missed_caller_queues``."""
    now = now or timezone.now()
    found = missed_callers(queues=queues, now=now)
    keys = {number_key(entry.caller) for entry in found}
    claims = claims_open(keys=keys, now=now)
    actionable = access.actionable_queues(user)
    entries = []
    for entry in found:
        claim = claims.get(number_key(entry.caller))
        entries.append(
            MissedCallerEntry(
                id=entry.id,
                number=entry.caller,
                number_display=number_display(entry.caller),
                queue=entry.queue,
                when=entry.when,
                first_when=entry.first_when,
                wait=entry.wait,
                outcome=entry.outcome,
                attempts=entry.attempts,
                can_call_back=actionable is None or entry.queue in actionable,
                call_back=None if claim is None else claim_in_progress(claim, user=user),
            )
        )
    return entries


def claim_in_progress(claim: CallBackClaim, *, user) -> CallBackInProgress:
    return CallBackInProgress(
        name=claim.name,
        by_you=claim.user_id is not None and claim.user_id == user.pk,
        since=claim.started,
        extension=claim.extension,
    )


def claims_open(*, keys: Collection[str], now: datetime) -> dict[str, CallBackClaim]:
    """The claims still holding on these numbers (by ``number_key``)."""
    if not keys:
        return {}
    stored = CallBackClaim.objects.filter(ended__isnull=True, number_key__in=list(keys))
    return {
        claim.number_key: claim
        for claim, reason in claims_judged(claims=list(stored), now=now)
        if reason is None
    }


def claims_judged(
    *, claims: Iterable[CallBackClaim], now: datetime
) -> list[tuple[CallBackClaim, str | None]]:
    """Each stored open claim with the reason it has ended by ``now`` (None: it holds), from
    the call history's outgoing rows of the claims' extensions."""
    claims = list(claims)
    if not claims:
        return []
    since = min(claim.started for claim in claims) - CLAIM_CLOCK_SLACK
    calls = outgoing_calls_since(since=since, callers={str(claim.extension) for claim in claims})
    rows = [
        OutgoingRow(
            when=call.when,
            stored=call.stored,
            caller=call.caller,
            destination=call.destination,
            status=call.status,
        )
        for call in calls
    ]
    timeout = claim_timeout()
    return [
        (
            claim,
            claim_end(
                started=claim.started,
                extension=claim.extension,
                key=claim.number_key,
                rows=rows,
                now=now,
                timeout=timeout,
            ),
        )
        for claim in claims
    ]


def call_back_default_get(*, user) -> int | None:
    """The extension ``user`` last called back from, or None."""
    if not access.is_active_user(user):
        return None
    return CallBackDefault.objects.filter(user=user).values_list("extension", flat=True).first()


def call_back_results(
    *, actions: Iterable[MemberAction], now: datetime | None = None
) -> dict[int, str | None]:
    """How the call backs among these audit records went, by record id: one of
    ``callbacks.END_REASONS``, or None while the call may still be going on. Records of other
    actions are left out."""
    ids = [action.pk for action in actions if action.action == MemberAction.Action.CALL_BACK]
    claims = list(CallBackClaim.objects.filter(action_id__in=ids))
    judged = dict(
        (claim.pk, reason)
        for claim, reason in claims_judged(
            claims=[claim for claim in claims if claim.ended is None], now=now or timezone.now()
        )
    )
    return {
        claim.action_id: claim.end_reason if claim.ended is not None else judged[claim.pk]
        for claim in claims
    }

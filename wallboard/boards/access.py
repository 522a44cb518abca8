"""Who may see and act on which queue. Used by consumers, the API, the control services and the
pages; the function names and signatures are a contract (docs/contracts.md).

Roles (docs/architecture.md, "Boards and roles"):
- admin: a superuser, or a member of the group ``ADMIN_GROUP`` — sees and acts on every queue.
- team lead: any user with ``TeamLeadAssignment`` rows — sees every queue, acts on those queues.
- viewer: any other active, logged-in user — sees every queue, acts on none.
- a kiosk (TV): no user at all, a revocable token scoped to its queues; read-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from wallboard.boards.models import (
    KIOSK_LAST_SEEN_RESOLUTION_SECONDS,
    KioskToken,
    TeamLeadAssignment,
    kiosk_token_hash,
)

ADMIN_GROUP = "Wallboard admins"


@dataclass(frozen=True)
class Kiosk:
    id: int
    name: str
    queues: frozenset[int] | None  # None = every queue
    board_id: int | None = None


def _is_active_user(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def is_admin(user) -> bool:
    if not _is_active_user(user):
        return False
    if user.is_superuser:
        return True
    # Not cached on the user: a websocket keeps its user object for hours, and a role taken
    # away in the admin must stop the next action, not the next reconnect.
    return user.groups.filter(name=ADMIN_GROUP).exists()


def actionable_queues(user) -> set[int] | None:
    """The queues this user may act on; None means all of them, an empty set means none."""
    if not _is_active_user(user):
        return set()
    if is_admin(user):
        return None
    return set(TeamLeadAssignment.objects.filter(user=user).values_list("queue", flat=True))


def is_team_lead(user) -> bool:
    return not is_admin(user) and bool(actionable_queues(user))


def role_of(user) -> str:
    """ "admin", "team_lead", "viewer" or "anonymous" — for pages and logs, not for decisions."""
    if not _is_active_user(user):
        return "anonymous"
    if is_admin(user):
        return "admin"
    return "team_lead" if actionable_queues(user) else "viewer"


def visible_queues(user) -> set[int] | None:
    """The queues this user may see; None means all of them, an empty set means none."""
    if _is_active_user(user):
        # Every role may watch every queue: a wallroom has no secrets between teams; actions
        # are what roles restrict.
        return None
    return set()


def can_view_queue(user, queue: int) -> bool:
    allowed = visible_queues(user)
    return allowed is None or queue in allowed


def can_act_on_queue(user, queue: int) -> bool:
    allowed = actionable_queues(user)
    return allowed is None or queue in allowed


def kiosk_from_token(token: str) -> Kiosk | None:
    """The live kiosk for this URL token, or None (unknown or revoked). Notes when it was seen."""
    if not token or len(token) > 200:
        return None
    row = (
        KioskToken.objects.active()
        .select_related("board")
        .filter(token_hash=kiosk_token_hash(token))
        .first()
    )
    if row is None:
        return None
    _note_seen([(row.pk, row.last_seen)])
    queues = row.queue_set()
    return Kiosk(
        id=row.pk,
        name=row.name,
        queues=frozenset(queues) if queues is not None else None,
        board_id=row.board_id,
    )


def live_kiosk_tokens(tokens: Iterable[str]) -> set[str]:
    """Those of these URL tokens whose kiosk is still live, in one query however many TVs ask.

    The periodic re-check of every open TV goes through here (a thousand TVs each asking on its
    own was a sixth of the web server's time); it notes them as seen like ``kiosk_from_token``.
    """
    by_hash = {kiosk_token_hash(t): t for t in set(tokens) if t and len(t) <= 200}
    if not by_hash:
        return set()
    rows = list(
        KioskToken.objects.active()
        .filter(token_hash__in=list(by_hash))
        .values_list("pk", "token_hash", "last_seen")
    )
    _note_seen([(pk, last_seen) for pk, _hash, last_seen in rows])
    return {by_hash[token_hash] for _pk, token_hash, _last_seen in rows}


def _note_seen(rows: list[tuple[int, datetime | None]]) -> None:
    """Write ``last_seen`` for these kiosk tokens, at most once a resolution period each: a TV
    reconnecting in a loop must not turn into a database write per attempt."""
    now = timezone.now()
    stale = now - timedelta(seconds=KIOSK_LAST_SEEN_RESOLUTION_SECONDS)
    seen = [pk for pk, last_seen in rows if last_seen is None or last_seen < stale]
    if seen:
        KioskToken.objects.filter(pk__in=seen).update(last_seen=now)

"""Who may see and act on which queue: the one decision point for users' rights. Pages, sockets,
the API and the action services all ask here, so a button a page hides is also refused by the
server.

Roles (docs/architecture.md, "Roles"):
- admin: a superuser, or a member of the group ``ADMIN_GROUP`` — sees and acts on every queue.
- team lead: any user with ``TeamLeadAssignment`` rows — sees every queue, acts on those queues.
- viewer: any other active, logged-in user — sees every queue, acts on none.
Kiosks (TVs without a user) are the boards' business (``wallboard.boards.kiosks``).
"""

from __future__ import annotations

from wallboard.control.models import TeamLeadAssignment

ADMIN_GROUP = "Wallboard admins"


def is_active_user(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def is_admin(user) -> bool:
    if not is_active_user(user):
        return False
    if user.is_superuser:
        return True
    # Not cached on the user: a websocket keeps its user object for hours, and a role taken
    # away in the admin must stop the next action, not the next reconnect.
    return user.groups.filter(name=ADMIN_GROUP).exists()


def actionable_queues(user) -> set[int] | None:
    """The queues this user may act on; None means all of them, an empty set means none."""
    if not is_active_user(user):
        return set()
    if is_admin(user):
        return None
    return set(TeamLeadAssignment.objects.filter(user=user).values_list("queue", flat=True))


def role_of(user) -> str:
    """ "admin", "team_lead", "viewer" or "anonymous" — for pages and logs, not for decisions."""
    if not is_active_user(user):
        return "anonymous"
    if is_admin(user):
        return "admin"
    return "team_lead" if actionable_queues(user) else "viewer"


def visible_queues(user) -> set[int] | None:
    """The queues this user may see; None means all of them, an empty set means none."""
    if is_active_user(user):
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


def can_audit(user) -> bool:
    """Admins audit everything, team leads their queues; viewers see no audit trail."""
    allowed = actionable_queues(user)
    return allowed is None or bool(allowed)


def reportable_queues(user) -> set[int] | None:
    """The queues whose call history (reports, call records, missed callers) this user may
    read: admins every queue (None), team leads their own, viewers none (an empty set).

    Boards show every queue to everyone; history names callers and agents' performance, so it
    goes only to those responsible for a queue."""
    return actionable_queues(user)


def can_report(user) -> bool:
    allowed = reportable_queues(user)
    return allowed is None or bool(allowed)

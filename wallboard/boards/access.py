"""Who may see and act on which queue. Used by consumers, the API and the control services.

Initial version: staff users see and act on everything; everyone else sees nothing.
The board work replaces this with roles (viewer / team lead / admin) and kiosk tokens.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kiosk:
    id: int
    name: str
    queues: frozenset[int] | None  # None = every queue


def visible_queues(user) -> set[int] | None:
    """The queues this user may see; None means all of them, an empty set means none."""
    if user is not None and user.is_authenticated and user.is_active and user.is_staff:
        return None
    return set()


def can_view_queue(user, queue: int) -> bool:
    allowed = visible_queues(user)
    return allowed is None or queue in allowed


def can_act_on_queue(user, queue: int) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def kiosk_from_token(token: str) -> Kiosk | None:
    return None

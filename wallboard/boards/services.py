"""Writes on board configuration (kiosk tokens, boards) and telling open sockets that what they
may show changed: every change that narrows a socket's rights reaches its group at once (after
the commit), and the sockets' periodic re-check is the backstop."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from wallboard.boards.models import Board, KioskToken, kiosk_token_hash

logger = logging.getLogger(__name__)


class KioskTokenError(Exception):
    """A kiosk token command cannot be done (name taken, unknown name...)."""


@dataclass(frozen=True)
class IssuedKiosk:
    token: KioskToken
    secret: str  # shown once; only its hash is stored

    @property
    def url(self) -> str:
        return kiosk_url(self.secret)


def kiosk_url(secret: str) -> str:
    return settings.SITE_URL + reverse("kiosk", kwargs={"token": secret})


def kiosk_group(kiosk_id: int) -> str:
    """The channel-layer group of one kiosk token's open TVs."""
    return f"kiosk.{kiosk_id}"


def user_group(user_id: int) -> str:
    """The channel-layer group of one user's open boards."""
    return f"user.{user_id}"


def kiosk_token_create(
    *, name: str, queues: list[int] | None = None, board: Board | None = None, is_demo: bool = False
) -> IssuedKiosk:
    """A new kiosk URL: its own queues, else its board's, else every queue."""
    name = name.strip()
    if not name:
        raise KioskTokenError("A kiosk token needs a name")
    if KioskToken.objects.active().filter(name=name).exists():
        raise KioskTokenError(f"A live kiosk token named {name!r} exists; revoke it first")
    secret = KioskToken.new_secret()
    token = KioskToken.objects.create(
        name=name,
        token_hash=kiosk_token_hash(secret),
        queues=list(queues or []),
        board=board,
        all_queues=not queues and board is None,
        is_demo=is_demo,
    )
    return IssuedKiosk(token=token, secret=secret)


def kiosk_token_revoke(*, token: KioskToken) -> None:
    """Revoke a token and close the TVs that have it open right now."""
    updated = KioskToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token.refresh_from_db()
    if updated:
        # After the commit: a socket that reconnects at once must already find it revoked.
        kiosk_id = token.pk
        transaction.on_commit(lambda: kiosk_sockets_close(kiosk_id=kiosk_id))


def kiosk_sockets_close(*, kiosk_id: int) -> None:
    """Tell every websocket of this kiosk to close (the KioskConsumer joins its group)."""
    _group_notify(kiosk_group(kiosk_id), "kiosk.revoked")


def kiosk_scope_changed(*, kiosk_ids: list[int]) -> None:
    """These kiosks' queues may have changed: their open TVs re-check now, after the commit
    (narrowed: they reload with the new scope; revoked: they close)."""
    ids = list(kiosk_ids)
    transaction.on_commit(
        lambda: [_group_notify(kiosk_group(kiosk_id), "access.changed") for kiosk_id in ids]
    )


def board_changed(*, board: Board) -> None:
    """A board's queues may have changed: the TVs that follow it re-check what they may show."""
    kiosk_scope_changed(kiosk_ids=list(board.kiosktoken_set.active().values_list("pk", flat=True)))


def board_delete(*, board: Board) -> None:
    """Delete a board. Its kiosk tokens that take their queues from it are revoked (their TVs
    close): without the board they would show nothing, never more than before."""
    with transaction.atomic():
        for token in board.kiosktoken_set.active().filter(all_queues=False):
            if not token.queues:
                kiosk_token_revoke(token=token)
        kiosk_scope_changed(
            kiosk_ids=list(board.kiosktoken_set.active().values_list("pk", flat=True))
        )
        board.delete()


def user_access_changed(*, user_id: int) -> None:
    """A user's rights or session changed (logout, deactivation, role): their open boards
    re-check now, after the commit (closed or reloaded with the new rights)."""
    transaction.on_commit(lambda: _group_notify(user_group(user_id), "access.changed"))


def _group_notify(group: str, event_type: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": event_type})
    except Exception:
        # The sockets' periodic re-check closes them anyway, a few seconds later.
        logger.warning("Could not tell group %s that its access changed", group, exc_info=True)


def kiosk_token_revoke_by_name(*, name: str) -> list[KioskToken]:
    tokens = list(KioskToken.objects.active().filter(name=name))
    if not tokens:
        raise KioskTokenError(f"No live kiosk token named {name!r}")
    for token in tokens:
        kiosk_token_revoke(token=token)
    return tokens

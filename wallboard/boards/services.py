"""Writes on board configuration: kiosk tokens (create, revoke) and the first-run demo setup."""

from __future__ import annotations

from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from wallboard.boards.models import Board, KioskToken, kiosk_token_hash


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


def kiosk_token_create(
    *, name: str, queues: list[int] | None = None, board: Board | None = None, is_demo: bool = False
) -> IssuedKiosk:
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
    """Tell every websocket of this kiosk to close (the live KioskConsumer joins `kiosk.{id}`)."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(f"kiosk.{kiosk_id}", {"type": "kiosk.revoked"})


def kiosk_token_revoke_by_name(*, name: str) -> list[KioskToken]:
    tokens = list(KioskToken.objects.active().filter(name=name))
    if not tokens:
        raise KioskTokenError(f"No live kiosk token named {name!r}")
    for token in tokens:
        kiosk_token_revoke(token=token)
    return tokens

"""What a kiosk (a wallroom TV without a user) may see: a revocable token scoped to its queues,
read-only. Users' rights are decided in ``wallboard.control.access``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from wallboard.boards.models import (
    KIOSK_LAST_SEEN_RESOLUTION_SECONDS,
    KioskToken,
    kiosk_token_hash,
)


@dataclass(frozen=True)
class Kiosk:
    id: int
    name: str
    queues: frozenset[int] | None  # None = every queue
    board_id: int | None = None

    @property
    def scope_signature(self) -> str:
        """What the kiosk may show, as text: an open TV whose scope changed must reload."""
        return "all" if self.queues is None else ",".join(map(str, sorted(self.queues)))


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
    return _kiosk(row)


def _kiosk(row: KioskToken) -> Kiosk:
    queues = row.queue_set()
    return Kiosk(
        id=row.pk,
        name=row.name,
        queues=frozenset(queues) if queues is not None else None,
        board_id=row.board_id,
    )


def kiosk_verdicts(keys: list[tuple[str, str]], *, changed: int, gone: int) -> dict:
    """For each open TV's (URL token, scope signature): None while it may stay as it is,
    ``gone`` when its token was revoked, ``changed`` when what it may show changed.

    One query however many TVs ask, rather than one per TV; notes them as seen like
    ``kiosk_from_token``.
    """
    by_hash = {kiosk_token_hash(t): t for t, _sig in keys if t and len(t) <= 200}
    rows = list(
        KioskToken.objects.active().select_related("board").filter(token_hash__in=list(by_hash))
    )
    _note_seen([(row.pk, row.last_seen) for row in rows])
    current = {by_hash[row.token_hash]: _kiosk(row).scope_signature for row in rows}
    verdicts: dict = {}
    for key in keys:
        token, signature = key
        if token not in current:
            verdicts[key] = gone
        elif current[token] != signature:
            verdicts[key] = changed
        else:
            verdicts[key] = None
    return verdicts


def _note_seen(rows: list[tuple[int, datetime | None]]) -> None:
    """Write ``last_seen`` for these kiosk tokens, at most once a resolution period each: a TV
    reconnecting in a loop must not turn into a database write per attempt."""
    now = timezone.now()
    stale = now - timedelta(seconds=KIOSK_LAST_SEEN_RESOLUTION_SECONDS)
    seen = [pk for pk, last_seen in rows if last_seen is None or last_seen < stale]
    if seen:
        KioskToken.objects.filter(pk__in=seen).update(last_seen=now)

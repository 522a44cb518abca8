"""Board configuration: how each PBX queue is shown, which queues a board shows, kiosk (TV) tokens
and which queues a team lead may act on. Queues are PBX queue numbers, not foreign keys: the PBX
owns the list of queues and it can change under us, so configuration never blocks on it."""

from __future__ import annotations

import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

KIOSK_TOKEN_BYTES = 24
# Tokens are random, 192-bit and never chosen by a human, so one unsalted SHA-256 is enough for
# storage; a leaked database does not reveal a usable URL.
KIOSK_LAST_SEEN_RESOLUTION_SECONDS = 60


# Queue numbers are stored in PositiveIntegerFields (PostgreSQL's int4).
MAX_QUEUE_NUMBER = 2_147_483_647


def queue_list_parse(text: str) -> list[int]:
    """ "100, 101" -> [100, 101]; raises ValueError on anything but comma-separated numbers."""
    queues: list[int] = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        # isdigit() alone admits "²" and other digits int() refuses.
        if not (part.isascii() and part.isdigit()) or len(part) > 10:
            raise ValueError(f"{part[:20]!r} is not a queue number")
        number = int(part)
        if not 0 < number <= MAX_QUEUE_NUMBER:
            raise ValueError(f"{number} is not a queue number")
        if number not in queues:
            queues.append(number)
    return queues


def validate_queue_list(value: object) -> None:
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) and item >= 0 for item in value
    ):
        raise ValidationError(_("Enter a list of queue numbers, e.g. [100, 101]."))


class QueueDisplay(models.Model):
    """How one PBX queue looks on the boards. Queues without a row use the defaults below.

    How its figures are counted (the service-level target, goal and formula) is the call
    history's ``QueueKpiSettings``: the boards show the target their figures were made with."""

    queue = models.PositiveIntegerField(_("queue number"), unique=True)
    display_name = models.CharField(
        _("display name"),
        max_length=60,
        blank=True,
        help_text=_("Shown instead of the PBX's queue name; empty = the PBX's name."),
    )
    waiting_amber = models.PositiveIntegerField(
        _("waiting: amber from"), default=3, help_text=_("Callers waiting; 0 = never.")
    )
    waiting_red = models.PositiveIntegerField(
        _("waiting: red from"), default=6, help_text=_("Callers waiting; 0 = never.")
    )
    wait_amber_seconds = models.PositiveIntegerField(
        _("longest wait: amber from (s)"), default=60, help_text=_("Seconds; 0 = never.")
    )
    wait_red_seconds = models.PositiveIntegerField(
        _("longest wait: red from (s)"), default=120, help_text=_("Seconds; 0 = never.")
    )
    flash = models.BooleanField(_("flash when red"), default=True)

    class Meta:
        ordering = ["queue"]
        verbose_name = _("queue display")
        verbose_name_plural = _("queue displays")

    def __str__(self) -> str:
        return f"{self.queue} {self.display_name}".strip()

    def clean(self) -> None:
        if self.waiting_amber and self.waiting_red and self.waiting_red < self.waiting_amber:
            raise ValidationError({"waiting_red": _("Red must not be below amber.")})
        if (
            self.wait_amber_seconds
            and self.wait_red_seconds
            and self.wait_red_seconds < self.wait_amber_seconds
        ):
            raise ValidationError({"wait_red_seconds": _("Red must not be below amber.")})

    def thresholds(self) -> dict:
        """What the page's JS needs to colour a tile (docs/architecture.md, Boards and roles)."""
        return {
            "waiting_amber": self.waiting_amber,
            "waiting_red": self.waiting_red,
            "wait_amber": self.wait_amber_seconds,
            "wait_red": self.wait_red_seconds,
            "flash": self.flash,
        }


class Board(models.Model):
    """A named selection of queues with its TV behaviour (rotation, sound)."""

    name = models.CharField(_("name"), max_length=80)
    slug = models.SlugField(_("slug"), unique=True)
    queues = models.JSONField(
        _("queues"),
        default=list,
        blank=True,
        validators=[validate_queue_list],
        help_text=_("Queue numbers in display order, e.g. [100, 101]; empty = every queue."),
    )
    queues_per_page = models.PositiveSmallIntegerField(
        _("queues per page"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(6)],
        help_text=_("More queues than this rotate through pages."),
    )
    rotation_seconds = models.PositiveIntegerField(
        _("rotation (s)"), default=15, validators=[MinValueValidator(3)]
    )
    sound_alert = models.BooleanField(
        _("sound alert"), default=False, help_text=_("Beep when a queue turns red.")
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("board")
        verbose_name_plural = _("boards")

    def __str__(self) -> str:
        return self.name

    def queue_set(self) -> set[int] | None:
        return set(self.queues) if self.queues else None


def kiosk_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KioskTokenQuerySet(models.QuerySet):
    def active(self) -> KioskTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class KioskToken(models.Model):
    """A revocable, read-only URL for a wallroom TV. Only the token's hash is stored."""

    name = models.CharField(_("name"), max_length=80)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    queues = models.JSONField(
        _("queues"),
        default=list,
        blank=True,
        validators=[validate_queue_list],
        help_text=_("Empty = the board's queues (or every queue, if so ticked)."),
    )
    all_queues = models.BooleanField(
        _("every queue"),
        default=False,
        help_text=_(
            "Without its own queues and without a board the token shows every queue only when "
            "this is ticked, else none: deleting a board never widens what its TVs show."
        ),
    )
    board = models.ForeignKey(
        Board,
        verbose_name=_("board"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        help_text=_("Rotation and sound settings; its queues unless the token lists its own."),
    )
    is_demo = models.BooleanField(default=False, editable=False)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_seen = models.DateTimeField(_("last seen"), null=True, blank=True, editable=False)

    objects = KioskTokenQuerySet.as_manager()

    class Meta:
        ordering = ["name", "-created"]
        verbose_name = _("kiosk token")
        verbose_name_plural = _("kiosk tokens")
        constraints = [
            # A name identifies one live token (`kiosk_token revoke NAME`); revoked ones stay
            # as history under the same name.
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(revoked_at__isnull=True),
                name="kiosk_token_active_name_unique",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def queue_set(self) -> set[int] | None:
        """The queues this TV may show; None = every queue."""
        if self.queues:
            return set(self.queues)
        if self.board is not None:
            return self.board.queue_set()
        return None if self.all_queues else set()

    @classmethod
    def new_secret(cls) -> str:
        return secrets.token_urlsafe(KIOSK_TOKEN_BYTES)

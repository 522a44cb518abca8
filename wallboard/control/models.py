"""Who may act on which queue (team-lead assignments), the audit trail of agent actions and call
backs, the call backs in progress (claims) and each user's extension for calling back."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class MemberAction(models.Model):
    """One pause/unpause/add/remove or call-back attempt and the PBX's answer.

    Written before the PBX request, for every attempt that passed validation, the permission
    check and the throttle, and completed with the outcome after it: a row still without
    ``finished`` long after the action's longest possible duration is an attempt whose outcome
    nobody knows (the process died in between). ``username`` is copied so that the trail still
    says who it was after the user is deleted.
    """

    class Action(models.TextChoices):
        PAUSE = "pause", _("Pause")
        UNPAUSE = "unpause", _("Unpause")
        ADD = "add", _("Add to queue")
        REMOVE = "remove", _("Remove from queue")
        CALL_BACK = "call_back", _("Call back")

    class Source(models.TextChoices):
        API = "api", _("HTTP API")
        WEBSOCKET = "websocket", _("Board (websocket)")
        CONSOLE = "console", _("Console")

    created = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="member_actions",
    )
    username = models.CharField(_("username"), max_length=150)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    queue = models.PositiveIntegerField(_("queue"))
    extension = models.PositiveIntegerField(_("extension"))
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    # The number a call back dialled, as sent to the PBX; empty for member actions.
    number = models.CharField(_("number called"), max_length=32, blank=True)
    # None until the outcome is recorded (pending, or unknown if it never was).
    ok = models.BooleanField(_("accepted"), null=True)
    # Why it ended as it did (control.services.Reason); empty while pending.
    reason = models.CharField(_("reason"), max_length=32, blank=True)
    finished = models.DateTimeField(_("finished"), null=True, blank=True)
    # The PBX's body code (200, 400 Already there...) or HTTP status (403); None if no answer.
    code = models.IntegerField(_("code"), null=True, blank=True)
    detail = models.CharField(_("detail"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("member action")
        verbose_name_plural = _("member actions")
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["queue", "-created"], name="control_action_queue_created")]

    def __str__(self) -> str:
        verdict = {True: "ok", False: "failed", None: "pending"}[self.ok]
        return f"{self.username} {self.action} {self.extension} in {self.queue}: {verdict}"


class TeamLeadAssignment(models.Model):
    """The queues a team lead may act on (pause, unpause, add, remove agents)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="team_lead_assignments",
    )
    queue = models.PositiveIntegerField(_("queue number"))

    class Meta:
        ordering = ["user__username", "queue"]
        verbose_name = _("team-lead assignment")
        verbose_name_plural = _("team-lead assignments")
        constraints = [
            models.UniqueConstraint(fields=["user", "queue"], name="team_lead_queue_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.queue}"


class CallBackClaim(models.Model):
    """A call back in progress: ``number`` is being called back by ``user`` from ``extension``
    since ``started`` (``wallboard.control.callbacks``).

    At most one open claim (``ended`` empty) per number: the partial unique constraint on
    ``number_key`` makes taking a claim atomic across every process, so a double click or two
    team leads at once place one call. A claim ends when the call records show the call's
    outcome, after ``CALLBACK_CLAIM_SECONDS``, or at once when nothing was placed; an open row
    past those is ended by the next call back of that number.
    """

    number_key = models.CharField(_("number key"), max_length=16)
    number = models.CharField(_("number called"), max_length=32)
    queue = models.PositiveIntegerField(_("queue"))
    # The missed call this call back answers (the CDR row's PBX id: the list entry's id).
    record = models.BigIntegerField(_("missed call record"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="call_back_claims",
    )
    # Copied: "being called back by Jana" still reads right after the user is renamed or gone.
    name = models.CharField(_("called back by"), max_length=300)
    extension = models.PositiveIntegerField(_("extension"))
    started = models.DateTimeField(_("started"))
    ended = models.DateTimeField(_("ended"), null=True, blank=True)
    # callbacks.END_REASONS; empty while open.
    end_reason = models.CharField(_("how it ended"), max_length=16, blank=True)
    action = models.OneToOneField(
        MemberAction,
        verbose_name=_("audit record"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="claim",
    )

    class Meta:
        verbose_name = _("call back in progress")
        verbose_name_plural = _("call backs in progress")
        ordering = ["-started", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["number_key"],
                condition=models.Q(ended__isnull=True),
                name="control_callback_one_open_claim",
            )
        ]

    def __str__(self) -> str:
        state = self.end_reason or "open"
        return f"{self.number} by {self.name} from {self.extension} ({state})"


class CallBackDefault(models.Model):
    """The extension a user last called back from: preselected the next time."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="call_back_default",
    )
    extension = models.PositiveIntegerField(_("extension"))
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("call-back extension")
        verbose_name_plural = _("call-back extensions")

    def __str__(self) -> str:
        return f"{self.user} → {self.extension}"

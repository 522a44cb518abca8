"""Who may act on which queue (team-lead assignments) and the audit trail of agent actions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class MemberAction(models.Model):
    """One pause/unpause/add/remove attempt and the PBX's answer.

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

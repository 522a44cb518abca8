"""The audit trail of agent actions: one row per attempt that reached the PBX lane."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class MemberAction(models.Model):
    """One pause/unpause/add/remove attempt and the PBX's answer.

    Written for every attempt that passed validation and the permission check, whether the PBX
    accepted it, refused it or could not be reached. ``username`` is copied so that the trail
    still says who it was after the user is deleted.
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
    ok = models.BooleanField(_("accepted"))
    # The PBX's body code (200, 400 Already there...) or HTTP status (403); None if no answer.
    code = models.IntegerField(_("code"), null=True, blank=True)
    detail = models.CharField(_("detail"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("member action")
        verbose_name_plural = _("member actions")
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["queue", "-created"], name="control_action_queue_created")]

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "failed"
        return f"{self.username} {self.action} {self.extension} in {self.queue}: {verdict}"

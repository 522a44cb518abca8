"""API tokens for programs: stored as a hash only, shown once when made."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

# A token is "wbt_" and 32 random bytes (URL-safe base64): recognisable in a leaked file, and
# random enough that one unsalted SHA-256 is a safe way to store it.
TOKEN_PREFIX = "wbt_"  # noqa: S105 - a marker, not a secret
_TOKEN_BYTES = 32
# How much of a token the lists show, to tell tokens apart without revealing them.
SHOWN_CHARACTERS = 8
LAST_USED_RESOLUTION_SECONDS = 60


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_new() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A program's credential, acting as its user. Revoked tokens stay as history."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    name = models.CharField(_("name"), max_length=80)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    shown = models.CharField(_("starts with"), max_length=16, editable=False)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    last_used = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["user__username", "name", "-created"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=models.Q(revoked_at__isnull=True),
                name="api_token_active_name_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} / {self.name} ({self.shown}…)"

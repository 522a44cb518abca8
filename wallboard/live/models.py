"""What of the live state must outlive Redis: the PBX's block. Everything else the live path
keeps is rebuilt from the PBX within seconds; a block forgotten with a Redis flush would send
the next request into a 403 that lasts 30 minutes."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class PBXBlock(models.Model):
    """Until when the PBX blocks the IP behind one shared budget (its Redis key)."""

    budget_key = models.CharField(_("budget key"), max_length=200, unique=True)
    until = models.FloatField(_("blocked until (Unix time)"))
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("PBX block")
        verbose_name_plural = _("PBX blocks")

    def __str__(self) -> str:
        return f"{self.budget_key} until {self.until:.0f}"

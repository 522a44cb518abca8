"""Durable call history: every CDR row the PBX ever gave us, the per-day read cursors, and each
queue's KPI rules (docs/kpi.md)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from wallboard.history import kpi
from wallboard.history.records import (
    OUTCOME_ABANDONED,
    OUTCOME_ANSWERED,
    OUTCOME_BUSY,
    OUTCOME_TIMEOUT,
    OUTCOME_VOICEMAIL,
)


class CallRecord(models.Model):
    """One PBX call record (CDR row), keyed by the PBX's own ``id``, plus what was worked out
    from it when it was read (``records.record_read``), so that reports only filter and count.

    The PBX's text fields are kept as sent (null and "" both stored as ""); ``raw`` is the row as
    the PBX sent it, for re-deriving after a definition changes. A row read again replaces the
    stored one (a deleted recording empties ``recording_file``).
    """

    class Outcome(models.TextChoices):
        ANSWERED = OUTCOME_ANSWERED, _("answered")
        ABANDONED = OUTCOME_ABANDONED, _("abandoned")
        VOICEMAIL = OUTCOME_VOICEMAIL, _("timed out to voicemail")
        TIMEOUT = OUTCOME_TIMEOUT, _("timed out")
        BUSY = OUTCOME_BUSY, _("busy (queue full)")

    id = models.BigIntegerField(_("PBX id"), primary_key=True)
    type = models.TextField(_("type"), blank=True)
    when = models.DateTimeField(_("when"))
    caller = models.TextField(_("caller"), blank=True)
    caller_name = models.TextField(_("caller name"), blank=True)
    received = models.TextField(_("received"), blank=True)
    received_name = models.TextField(_("received name"), blank=True)
    destination = models.TextField(_("destination"), blank=True)
    destination_name = models.TextField(_("destination name"), blank=True)
    duration = models.IntegerField(_("duration (s)"))
    application = models.TextField(_("application"), blank=True)
    status = models.TextField(_("status"), blank=True)
    recording_file = models.TextField(_("recording file"), blank=True)
    unique_id = models.TextField(_("unique id"), blank=True)
    complete_duration = models.IntegerField(_("complete duration (s)"), null=True, blank=True)
    raw = models.JSONField(_("as sent by the PBX"))

    # Worked out when read. ``outcome`` is set for every row shaped like a queue call ("" for
    # other rows); ``queue`` only once that queue is known (services.call_records_attribute
    # fills it in later); ``agent`` ("" when none) for answered queue calls.
    queue = models.PositiveIntegerField(_("queue"), null=True, blank=True)
    recording_queue = models.PositiveIntegerField(_("queue in recording name"), null=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, blank=True)
    wait = models.IntegerField(_("wait (s)"), null=True, blank=True)
    talk = models.IntegerField(_("talk (s)"), null=True, blank=True)
    agent = models.TextField(_("agent"), blank=True)
    day = models.DateField(_("local day"))
    slot = models.PositiveSmallIntegerField(_("15-minute slot of the local day"))
    stored = models.DateTimeField(_("stored"))

    class Meta:
        verbose_name = _("call record")
        verbose_name_plural = _("call records")
        ordering = ["-when", "-id"]
        indexes = [
            # Reports: a range of days for some queues.
            models.Index(fields=["day", "queue"], name="history_call_day_queue"),
            # Only queue calls: rows without a queue are found by the two indexes below.
            models.Index(
                fields=["queue", "when"],
                condition=models.Q(queue__isnull=False),
                name="history_call_queue_when",
            ),
            # Missed callers: a number's later calls.
            models.Index(fields=["caller", "when"], name="history_call_caller_when"),
            models.Index(fields=["agent", "when"], name="history_call_agent_when"),
            # Rows without a queue, by the numbers that may become one (services
            # .call_records_attribute): a queue that appears is looked up, never scanned for.
            models.Index(
                fields=["received"],
                condition=models.Q(queue__isnull=True),
                name="history_call_noqueue_received",
            ),
            models.Index(
                fields=["recording_queue"],
                condition=models.Q(queue__isnull=True),
                name="history_call_noqueue_recording",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {timezone.localtime(self.when):%Y-%m-%d %H:%M:%S} {self.caller}"


class CdrDayCursor(models.Model):
    """How far one local day of the PBX's CDR has been read, so reading resumes after a restart.

    ``rows`` is how many of the day's rows (positions in the PBX's list) the current pass has
    read: the next request's offset. ``last`` identifies the last of them ([id, unique_id,
    when]) so the next request can tell that the list shrank or shifted. A pass starts at
    offset 0 (``pass_started``); a day is *settled* when a pass that started after the day's
    settle time (``services.settle_time``) reached the end, and is then never read again unless
    asked (``cdr_import --again``).
    """

    day = models.DateField(_("local day"), primary_key=True)
    rows = models.PositiveIntegerField(_("rows read"), default=0)
    last = models.JSONField(_("last row read"), null=True, blank=True)
    pass_started = models.DateTimeField(_("pass started"))
    read_at = models.DateTimeField(_("last read"), null=True, blank=True)
    settled_at = models.DateTimeField(_("settled"), null=True, blank=True)
    requests = models.PositiveIntegerField(_("requests spent"), default=0)

    class Meta:
        verbose_name = _("CDR day")
        verbose_name_plural = _("CDR days")
        ordering = ["-day"]

    def __str__(self) -> str:
        state = "settled" if self.settled_at else "open"
        return f"{self.day} ({self.rows} rows, {state})"


class QueueKpiSettings(models.Model):
    """How one queue's figures are counted; a queue without a row gets the defaults
    (``kpi.KpiRules``). docs/kpi.md explains each choice."""

    class Formula(models.TextChoices):
        ANSWERED = kpi.FORMULA_ANSWERED, _("answered within T ÷ answered")
        OFFERED = kpi.FORMULA_OFFERED, _("answered within T ÷ (answered + unanswered)")
        REMOVED = kpi.FORMULA_REMOVED, _("(answered + abandoned within T) ÷ offered")

    queue = models.PositiveIntegerField(_("queue"), unique=True)
    service_level_target_seconds = models.PositiveIntegerField(
        _("service level target (s)"),
        default=kpi.DEFAULT_TARGET_SECONDS,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text=_("T: calls answered within this many seconds meet the service level."),
    )
    service_level_target_percent = models.PositiveSmallIntegerField(
        _("service level goal (%)"),
        default=kpi.DEFAULT_TARGET_PERCENT,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("The share of calls that should meet T; the staffing hint aims for it."),
    )
    service_level_formula = models.CharField(
        _("service level formula"),
        max_length=16,
        choices=Formula.choices,
        default=kpi.FORMULA_OFFERED,
    )
    short_abandon_seconds = models.PositiveSmallIntegerField(
        _("short abandon (s)"),
        default=kpi.DEFAULT_SHORT_ABANDON_SECONDS,
        validators=[MaxValueValidator(120)],
        help_text=_("A caller who hangs up within this many seconds is a short abandon."),
    )
    exclude_short_abandons = models.BooleanField(
        _("leave out short abandons"),
        default=False,
        help_text=_("Short abandons then count neither as offered nor as abandoned."),
    )

    class Meta:
        verbose_name = _("queue KPI settings")
        verbose_name_plural = _("queue KPI settings")
        ordering = ["queue"]

    def __str__(self) -> str:
        goal, target = self.service_level_target_percent, self.service_level_target_seconds
        return f"{self.queue}: {goal} % within {target} s"

    def rules(self) -> kpi.KpiRules:
        return kpi.KpiRules(
            target_seconds=self.service_level_target_seconds,
            target_percent=self.service_level_target_percent,
            formula=self.service_level_formula,
            short_abandon_seconds=self.short_abandon_seconds,
            exclude_short_abandons=self.exclude_short_abandons,
        )

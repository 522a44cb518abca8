"""Forms for the board pages."""

from __future__ import annotations

from datetime import date

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from wallboard.boards import reports
from wallboard.boards.models import Board, KioskToken, queue_list_parse
from wallboard.control.models import MemberAction
from wallboard.history.intervals import (
    INTERVAL_15MIN,
    INTERVAL_DAY,
    INTERVAL_HOUR,
    INTERVAL_MONTH,
    INTERVAL_WEEK,
    MAX_SPAN_DAYS,
)

# Dates a filter may name: far enough for any real audit, near enough that a day boundary in any
# time zone stays a valid datetime (date.max + 1 day would overflow).
_FIRST_DAY = date(2000, 1, 1)
_LAST_DAY = date(2100, 12, 31)
# Queue and extension numbers are PositiveIntegerFields (PostgreSQL's int4).
_MAX_NUMBER = 2_147_483_647


def _day_field(label) -> forms.DateField:
    """An optional day between _FIRST_DAY and _LAST_DAY, picked with the browser's calendar."""
    return forms.DateField(
        label=label,
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MinValueValidator(_FIRST_DAY), MaxValueValidator(_LAST_DAY)],
    )


class AuditFilterForm(forms.Form):
    """The audit page's filters (GET). Every field optional; an invalid one is a 400 that says
    what is wrong."""

    OK_CHOICES = [
        ("", _("any")),
        ("1", _("accepted")),
        ("0", _("refused / failed")),
        ("pending", _("pending / outcome unknown")),
    ]

    user = forms.CharField(label=_("User"), required=False, max_length=150)
    queue = forms.IntegerField(label=_("Queue"), required=False, min_value=0, max_value=_MAX_NUMBER)
    extension = forms.IntegerField(
        label=_("Extension"), required=False, min_value=0, max_value=_MAX_NUMBER
    )
    action = forms.ChoiceField(
        label=_("Action"),
        required=False,
        choices=[("", _("any")), *MemberAction.Action.choices],
    )
    ok = forms.ChoiceField(label=_("Result"), required=False, choices=OK_CHOICES)
    date_from = _day_field(_("From"))
    date_to = _day_field(_("To"))

    def clean(self) -> dict:
        cleaned = super().clean()
        first, last = cleaned.get("date_from"), cleaned.get("date_to")
        if first and last and first > last:
            raise forms.ValidationError(_("The start date is after the end date."))
        return cleaned


class QueueListField(forms.CharField):
    """Queue numbers typed as "100, 101" (stored as the JSON list [100, 101])."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", _("Comma-separated queue numbers; empty = every queue."))
        super().__init__(**kwargs)

    def prepare_value(self, value: object) -> str:
        if isinstance(value, list):
            return ", ".join(str(number) for number in value)
        return "" if value is None else str(value)

    def to_python(self, value: object) -> list[int]:
        text = super().to_python(value)
        try:
            return queue_list_parse(text.strip("[] "))
        except ValueError as exc:
            raise forms.ValidationError(
                _("Enter queue numbers separated by commas, e.g. 100, 101.")
            ) from exc


class BoardAdminForm(forms.ModelForm):
    queues = QueueListField(label=_("queues"))

    class Meta:
        model = Board
        fields = ["name", "slug", "queues", "queues_per_page", "rotation_seconds", "sound_alert"]


class KioskTokenAdminForm(forms.ModelForm):
    queues = QueueListField(
        label=_("queues"),
        help_text=_("Empty = the board's queues (or every queue, if so ticked)."),
    )

    class Meta:
        model = KioskToken
        fields = ["name", "queues", "board", "all_queues"]


# At most this many queues in one report (the console's limit).
REPORT_MAX_QUEUES = 200


class QueueNumbersField(forms.Field):
    """Queue numbers from checkboxes (``queue=100&queue=101``) or one comma-separated value."""

    widget = forms.CheckboxSelectMultiple

    def to_python(self, value: object) -> list[int]:
        if value in self.empty_values:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        numbers: list[int] = []
        for item in values:
            for part in str(item).split(","):
                text = part.strip()
                if not text:
                    continue
                if not text.isdigit() or not 0 < int(text) <= _MAX_NUMBER:
                    raise forms.ValidationError(
                        _("“%(value)s” is not a queue number."), params={"value": text[:20]}
                    )
                if int(text) not in numbers:
                    numbers.append(int(text))
        if len(numbers) > REPORT_MAX_QUEUES:
            raise forms.ValidationError(
                _("At most %(limit)s queues in one report."), params={"limit": REPORT_MAX_QUEUES}
            )
        return numbers


class ReportForm(forms.Form):
    """The reports page's question (GET): queues (none = all the user may see), a range preset
    or custom dates, an interval (the range's default when not given). Every refusal is a form
    error the page shows with a 400; ``check_span=False`` (the calls export) accepts a range of
    any length, since its rows do not depend on the interval."""

    RANGE_CHOICES = [
        (reports.RANGE_TODAY, _("Today")),
        (reports.RANGE_YESTERDAY, _("Yesterday")),
        (reports.RANGE_THIS_WEEK, _("This week")),
        (reports.RANGE_LAST_WEEK, _("Last week")),
        (reports.RANGE_THIS_MONTH, _("This month")),
        (reports.RANGE_LAST_MONTH, _("Last month")),
        (reports.RANGE_CUSTOM, _("Custom")),
    ]
    INTERVAL_CHOICES = [
        (INTERVAL_15MIN, _("15 minutes")),
        (INTERVAL_HOUR, _("Hour")),
        (INTERVAL_DAY, _("Day")),
        (INTERVAL_WEEK, _("Week")),
        (INTERVAL_MONTH, _("Month")),
    ]

    queue = QueueNumbersField(label=_("Queues"), required=False)
    range = forms.ChoiceField(label=_("Range"), required=False, choices=RANGE_CHOICES)
    date_from = _day_field(_("From"))
    date_to = _day_field(_("To"))
    interval = forms.ChoiceField(label=_("Interval"), required=False, choices=INTERVAL_CHOICES)

    def __init__(
        self,
        data,
        *,
        today: date,
        queue_choices: list[tuple[int, str]],
        check_span: bool = True,
    ) -> None:
        super().__init__(data)
        self.today = today
        self.check_span = check_span
        self.fields["queue"].widget.choices = queue_choices

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        first, last = cleaned.get("date_from"), cleaned.get("date_to")
        preset = cleaned.get("range") or (
            reports.RANGE_CUSTOM if first or last else reports.RANGE_TODAY
        )
        if preset == reports.RANGE_CUSTOM:
            if not first or not last:
                raise forms.ValidationError(_("A custom range needs a start and an end date."))
            if first > last:
                raise forms.ValidationError(_("The start date is after the end date."))
        else:
            first, last = reports.range_days(preset, today=self.today)
        interval = cleaned.get("interval") or reports.default_interval(first, last)
        if self.check_span and not reports.span_fits(first, last, interval):
            days = (last - first).days + 1
            raise forms.ValidationError(
                _(
                    "%(days)s days is too long a range for the interval “%(interval)s” (at most "
                    "%(limit)s days): choose a longer interval or a shorter range."
                ),
                params={
                    "days": days,
                    "interval": dict(self.INTERVAL_CHOICES)[interval],
                    "limit": MAX_SPAN_DAYS[interval],
                },
            )
        cleaned.update(range=preset, date_from=first, date_to=last, interval=interval)
        return cleaned

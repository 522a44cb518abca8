"""Forms for the board pages."""

from __future__ import annotations

from datetime import date

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from wallboard.boards.models import Board, KioskToken, queue_list_parse
from wallboard.control.models import MemberAction

# Dates a filter may name: far enough for any real audit, near enough that a day boundary in any
# time zone stays a valid datetime (date.max + 1 day would overflow).
_FIRST_DAY = date(2000, 1, 1)
_LAST_DAY = date(2100, 12, 31)
# Queue and extension numbers are PositiveIntegerFields (PostgreSQL's int4).
_MAX_NUMBER = 2_147_483_647


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
    date_from = forms.DateField(
        label=_("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MinValueValidator(_FIRST_DAY), MaxValueValidator(_LAST_DAY)],
    )
    date_to = forms.DateField(
        label=_("To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MinValueValidator(_FIRST_DAY), MaxValueValidator(_LAST_DAY)],
    )

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

"""Forms for the board pages."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from wallboard.control.models import MemberAction


class AuditFilterForm(forms.Form):
    """The audit page's filters (GET). Every field optional; invalid values are ignored."""

    OK_CHOICES = [("", _("any")), ("1", _("accepted")), ("0", _("refused / failed"))]

    user = forms.CharField(label=_("User"), required=False, max_length=150)
    queue = forms.IntegerField(label=_("Queue"), required=False, min_value=0)
    extension = forms.IntegerField(label=_("Extension"), required=False, min_value=0)
    action = forms.ChoiceField(
        label=_("Action"),
        required=False,
        choices=[("", _("any")), *MemberAction.Action.choices],
    )
    ok = forms.ChoiceField(label=_("Result"), required=False, choices=OK_CHOICES)
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

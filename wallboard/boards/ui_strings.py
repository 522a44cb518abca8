"""The words the pages' JavaScript shows, translated on the server and handed over with
json_script — one catalogue for templates and scripts, no JS i18n build."""

from __future__ import annotations

from django.utils.translation import gettext as _

from wallboard.history.models import CallRecord
from wallboard.live.shapes import MEMBER_STATES, TAKING_CALLS


def member_states() -> list[list[str]]:
    """[[state, word], ...] in the order the boards count them (for the page's JavaScript)."""
    return [[state, str(label)] for state, label in MEMBER_STATES]


def taking_calls_states() -> list[str]:
    """The states of members who take calls (the staffing hint compares with their count)."""
    return list(TAKING_CALLS)


def state_words() -> dict[str, str]:
    return {state: str(label) for state, label in MEMBER_STATES}


def outcome_words() -> dict[str, str]:
    """How a missed call ended, in words (the call history's own labels)."""
    return {outcome: str(label) for outcome, label in CallRecord.Outcome.choices}


def missed_strings() -> dict[str, str]:
    """The missed-callers panel's words; the server's first paint fills the same ones."""
    return {
        "by_other": _("Being called back by {name} since {time}"),
        "by_you": _("You are calling back from {ext} since {time}"),
        "call_back": _("Call back"),
        "calling": _("Calling…"),
        "dialog": _("{number} · queue {queue} · attempts: {attempts}"),
        "result": _("{number}: {message}"),
        "no_extensions": _("The PBX's extensions are not known yet"),
        "refresh_failed": _("Could not refresh the list; trying again."),
    }


def js_strings() -> dict[str, object]:
    return {
        "data_from": _("Data from {time} ({age} s ago)"),
        "reconnecting": _("Reconnecting…"),
        "connecting": _("Connecting…"),
        "pbx_blocked": _("PBX blocked until {time}"),
        "pbx_blocked_unknown": _("PBX blocked"),
        "pbx_unreachable": _("PBX unreachable since {time}"),
        "pbx_starting": _("Waiting for the first data from the PBX…"),
        "no_data": _("No data yet"),
        "page": _("Page {n} of {total}"),
        "pending": _("Waiting for the PBX…"),
        "no_answer": _("No answer from the server; see the audit page."),
        "not_connected": _("Not connected; try again in a moment."),
        "pause": _("Pause"),
        "unpause": _("Unpause"),
        "remove": _("Remove"),
        "actions": {
            "pause": _("Pause"),
            "unpause": _("Unpause"),
            "add": _("Add"),
            "remove": _("Remove"),
        },
        "result": _("{ext} · {action}: {message}"),
        "registered": _("registered"),
        "not_registered": _("not registered"),
        "closed": _("This board has been switched off."),
        "session_ended": _("Your session has ended; log in again."),
        "sound_on": _("Sound alerts on"),
        "confirm_remove": _("{name} ({ext}) will stop receiving calls from queue {queue}."),
        "missed": missed_strings(),
        "outcomes": outcome_words(),
        # The staffing hint's tooltip (templatetags.boards.staffing_basis writes the same).
        "staffing": {
            "basis": _(
                "Erlang C: {calls} calls in the last {minutes} min, average talk {aht}, "
                "goal {percent} % within {target} s"
            ),
            "few_calls": _(
                "No hint yet: {calls} calls in the last {minutes} min (at least {min} needed)"
            ),
            "no_aht": _("No hint yet: no call answered today"),
        },
    }


def report_strings() -> dict[str, str]:
    """The reports page's chart words."""
    return {
        "offered": _("Offered"),
        "answered": _("Answered"),
        "abandoned": _("Abandoned"),
        "other": _("Voicemail, timed out, busy"),
        "service_level": _("Service level"),
        "goal": _("Goal"),
        "asa": _("ASA"),
        "longest_wait": _("Longest wait"),
        "calls": _("Calls"),
        "percent": _("%"),
        "hour": _("Hour of the day"),
        "click_hint": _("Click a bar or a point to list its calls."),
        "loading": _("Loading the calls…"),
        "load_failed": _("The calls could not be loaded; try again."),
        "all": _("all"),
    }

"""The reports page (/reports/): figures, charts, agents and calls of a range for admins and
team leads, each over the queues they may report on; its drill-down and its CSV exports.

Every figure comes from the history's KPI engine (``wallboard.history.selectors``), never from
the PBX. A team lead who asks for another team's queue gets 403, as from the API: the picker
only offers their own queues, so such a request is a hand-made URL, and answering it with
fewer queues than asked would show figures that look like the ones asked for. Bad questions
(dates, ranges, intervals) are form errors shown with 400. The exports stream (docs/reports.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from wallboard.boards import reports
from wallboard.boards import selectors as boards
from wallboard.boards.forms import ReportForm
from wallboard.boards.templatetags.boards import mean_duration
from wallboard.boards.ui_strings import report_strings
from wallboard.control.access import reportable_queues
from wallboard.history import selectors as history
from wallboard.history.intervals import (
    INTERVAL_MONTH,
    QueryInvalid,
    days_of,
    local_today,
    periods,
)
from wallboard.history.kpi import FORMULA_ANSWERED, FORMULA_OFFERED, KpiRules

CALLS_PAGE_SIZE = 50
# Rows per chunk of a streamed export: big enough to keep the overhead low, small enough to
# keep the first bytes coming at once.
CSV_BATCH_ROWS = 1000


@dataclass(frozen=True)
class Question:
    """A valid report question: the queues (all the user may see when none was picked), the
    range, the interval."""

    queues: list[int]
    picked: bool
    range: str
    date_from: date
    date_to: date
    interval: str
    query: str  # the question as a query string with its days, for links that ask it again


class BadQuestion(Exception):
    def __init__(self, form: ReportForm) -> None:
        super().__init__("invalid report question")
        self.form = form


def _reportable(user) -> set[int] | None:
    """The queues this user may report on (None: all); 403 for users with none."""
    allowed = reportable_queues(user)
    if allowed is not None and not allowed:
        raise PermissionDenied(_("Reports are for team leads and administrators."))
    return allowed


def _queue_names(numbers: list[int]) -> dict[int, str]:
    """Each queue's display name (configured, else the PBX's, else its number)."""
    live = {row["queue"]: row.get("name") for row in boards.known_queues()}
    displays = boards.display_config(numbers)
    return {
        number: displays[number].display_name or live.get(number) or str(number)
        for number in numbers
    }


def _question(
    request: HttpRequest, *, allowed: set[int] | None, now: datetime, check_span: bool = True
) -> tuple[Question, ReportForm]:
    """The report question in the request; raises ``BadQuestion`` (400) or PermissionDenied."""
    today = local_today(now, history.pbx_zone())
    form = ReportForm(request.GET, today=today, queue_choices=[], check_span=check_span)
    if allowed is not None:
        offered = sorted(allowed)
    else:
        offered = [row["queue"] for row in boards.known_queues()]
    if not form.is_valid():
        _choices(form, offered, [])
        raise BadQuestion(form)
    data = form.cleaned_data
    wanted: list[int] = data["queue"]
    if allowed is not None and not set(wanted) <= allowed:
        raise PermissionDenied(_("You may not see reports of these queues."))
    if allowed is None:
        # Every queue: those the PBX lists now and those that had calls in the range (a queue
        # the PBX no longer lists keeps its history).
        extra = history.queues_with_calls(date_from=data["date_from"], date_to=data["date_to"])
        offered = sorted(set(offered) | set(extra))
    _choices(form, offered, wanted)
    # The form shows the question as answered: a preset's dates, the interval chosen for it.
    shown = request.GET.copy()
    shown["range"] = data["range"]
    shown["date_from"] = data["date_from"].isoformat()
    shown["date_to"] = data["date_to"].isoformat()
    shown["interval"] = data["interval"]
    form.data = shown
    # Links (drill-down, exports) pin the days the page shows: "today" clicked after midnight
    # must still mean the day on the page, and a period index its period.
    query = [("queue", number) for number in wanted] + [
        ("range", "custom"),
        ("date_from", data["date_from"].isoformat()),
        ("date_to", data["date_to"].isoformat()),
        ("interval", data["interval"]),
    ]
    return (
        Question(
            queues=wanted or offered,
            picked=bool(wanted),
            range=data["range"],
            date_from=data["date_from"],
            date_to=data["date_to"],
            interval=data["interval"],
            query=urlencode(query),
        ),
        form,
    )


def _choices(form: ReportForm, offered: list[int], wanted: list[int]) -> None:
    """The picker's queues: those the user may report on, plus any asked for by number."""
    numbers = offered + [number for number in wanted if number not in offered]
    names = _queue_names(numbers)
    form.fields["queue"].widget.choices = [
        (number, f"{number} · {names[number]}" if names[number] != str(number) else str(number))
        for number in numbers
    ]


def formula_text(rules: KpiRules | None, *, mixed: bool = False) -> str:
    """The service-level formula in words, with the queue's target."""
    if mixed or rules is None:
        return _("each queue by its own formula and target")
    target = _("%(seconds)s s") % {"seconds": rules.target_seconds}
    if rules.formula == FORMULA_ANSWERED:
        text = _("answered within %(target)s ÷ answered")
    elif rules.formula == FORMULA_OFFERED:
        text = _("answered within %(target)s ÷ (answered + unanswered)")
    else:
        text = _("(answered + abandoned within %(target)s) ÷ offered")
    text = text % {"target": target}
    if rules.exclude_short_abandons:
        text += " · " + _("short abandons left out")
    return text


def _selection_rules(rules: dict[int, KpiRules]) -> tuple[KpiRules | None, bool]:
    """The selection's common rules, or (None, True) when its queues count differently."""
    distinct = set(rules.values())
    if len(distinct) == 1:
        return distinct.pop(), False
    if not distinct:
        return KpiRules(), False
    return None, True


def _change_text(change: reports.Change) -> str:
    if change.change is None:
        return ""
    # U+2212 MINUS SIGN: a hyphen is too short beside digits.
    sign = "+" if change.change > 0 else "\u2212" if change.change < 0 else "±"
    amount = abs(change.change)
    if change.kind == "count":
        return _("%(sign)s%(amount)s %%") % {"sign": sign, "amount": _number(amount)}
    if change.kind == "percent":
        return _("%(sign)s%(amount)s pp") % {"sign": sign, "amount": _number(amount)}
    return _("%(sign)s%(amount)s s") % {"sign": sign, "amount": _number(amount)}


def _number(value: float) -> str:
    return number_format(value, decimal_pos=1 if value % 1 else 0)


def figure_text(kind: str, value: float | None) -> str:
    """A figure as the page shows it: counts grouped, percentages with one decimal, times as
    m:ss; "—" for a figure with nothing to compute it from."""
    if value is None:
        return "—"
    if kind == "count":
        return number_format(int(value), force_grouping=True)
    if kind == "percent":
        return f"{number_format(value, decimal_pos=1)} %"
    return mean_duration(value)


def _headline_labels() -> dict[str, str]:
    return {
        "offered": _("Offered"),
        "answered": _("Answered"),
        "abandoned": _("Abandoned"),
        "short_abandoned": _("Short abandons"),
        "service_level": _("Service level"),
        "asa": _("Average speed of answer"),
        "aht": _("Average handle time"),
        "longest_wait": _("Longest wait"),
        "abandon_rate": _("Abandon rate"),
    }


@never_cache
@login_required
def reports_page(request: HttpRequest) -> HttpResponse:
    allowed = _reportable(request.user)
    now = timezone.now()
    try:
        question, form = _question(request, allowed=allowed, now=now)
    except BadQuestion as bad:
        return render(request, "boards/reports.html", {"form": bad.form}, status=400)
    zone = history.pbx_zone()
    current = history.report_figures(
        queues=question.queues,
        date_from=question.date_from,
        date_to=question.date_to,
        interval=question.interval,
        queue_periods=False,  # the page draws the selection; the queues table shows totals
    )
    previous_from, previous_to = reports.previous_range(
        question.range, question.date_from, question.date_to
    )
    cut = reports.previous_cut(
        now,
        date_from=question.date_from,
        date_to=question.date_to,
        previous_to=previous_to,
        zone=zone,
    )
    previous = history.report_figures(
        queues=question.queues,
        date_from=previous_from,
        date_to=previous_to,
        interval=INTERVAL_MONTH,
        before=cut,
        detail=False,
        queue_periods=False,
    )
    total = current.selection_total
    common, mixed = _selection_rules(current.rules)
    names = _queue_names(question.queues)
    labels = _headline_labels()
    cards = [
        {
            "key": change.key,
            "label": labels[change.key],
            "value": figure_text(change.kind, change.value),
            "previous": figure_text(change.kind, change.previous),
            "change": _change_text(change),
            "trend": change.trend or "",
        }
        for change in reports.headline(total, previous.selection_total)
    ]
    queue_rows = [
        {
            "queue": queue,
            "name": names[queue],
            "figures": current.totals[queue],
            "formula": formula_text(current.rules[queue]),
        }
        for queue in question.queues
    ]
    agent_rows = [
        {"figures": agent, "share": reports.agent_share(agent, total.answered)}
        for agent in current.agents
    ]
    config = {
        "charts": reports.chart_data(current),
        "time_zone": str(zone),
        "strings": report_strings(),
        "calls_url": reverse("report_calls") + "?" + question.query,
    }
    return render(
        request,
        "boards/reports.html",
        {
            "form": form,
            "question": question,
            "queue_names": [names[queue] for queue in question.queues],
            "cards": cards,
            "total": total,
            "formula": formula_text(common, mixed=mixed),
            "rules_mixed": mixed,
            "previous_from": previous_from,
            "previous_to": previous_to,
            "previous_cut": cut,
            "queue_rows": queue_rows,
            "agent_rows": agent_rows,
            "config": config,
            "periods": len(current.periods),
        },
    )


def _drill(request: HttpRequest, question: Question) -> tuple[reports.PeriodCalls, str, str]:
    """Which calls the drill-down asks for (a period of the report, or an agent's answered
    calls, else the whole range) and its title; QueryInvalid for a period the report has not."""
    agent = request.GET.get("agent", "").strip()[:40]
    whole = reports.PeriodCalls(question.date_from, question.date_to, None)
    if agent:
        return whole, agent, _("Calls answered by %(agent)s") % {"agent": agent}
    index_text = request.GET.get("period", "")
    if not index_text:
        return whole, "", _("All calls of the range")
    zone = history.pbx_zone()
    all_periods = periods(question.date_from, question.date_to, question.interval, zone)
    if not index_text.isdigit() or int(index_text) >= len(all_periods):
        raise QueryInvalid(_("The report has no period %(period)s.") % {"period": index_text[:12]})
    period = all_periods[int(index_text)]
    calls = reports.period_calls(
        period.key,
        interval=question.interval,
        date_from=question.date_from,
        date_to=question.date_to,
    )
    first = date_format(calls.date_from, "DATE_FORMAT")
    if calls.slots is not None:
        title = _("Calls of %(day)s, %(start)s to %(end)s") % {
            "day": first,
            "start": period.start.strftime("%H:%M"),
            "end": period.end.strftime("%H:%M"),
        }
    elif calls.date_from == calls.date_to:
        title = _("Calls of %(day)s") % {"day": first}
    else:
        last = date_format(calls.date_to, "DATE_FORMAT")
        title = _("Calls of %(first)s to %(last)s") % {"first": first, "last": last}
    return calls, "", title


@never_cache
@login_required
def report_calls(request: HttpRequest) -> HttpResponse:
    """The drill-down: one page of the calls of a report period or of an agent (HTML for the
    page to insert)."""
    allowed = _reportable(request.user)
    try:
        question, _form = _question(request, allowed=allowed, now=timezone.now())
    except BadQuestion as bad:
        errors = [str(e) for errors in bad.form.errors.values() for e in errors]
        return render(request, "boards/_report_calls.html", {"errors": errors}, status=400)
    page_text = request.GET.get("page", "1")
    try:
        calls, agent, title = _drill(request, question)
        # Nine digits at most: a page far past the end must not become an SQL offset that
        # overflows the database's integers.
        if not page_text.isdigit() or len(page_text) > 9:
            raise QueryInvalid(_("The page must be a number."))
        page = history.queue_calls_page(
            queues=question.queues,
            date_from=calls.date_from,
            date_to=calls.date_to,
            slots=calls.slots,
            agent=agent or None,
            page=int(page_text),
            page_size=CALLS_PAGE_SIZE,
        )
    except QueryInvalid as error:
        return render(request, "boards/_report_calls.html", {"errors": [str(error)]}, status=400)
    drill = urlencode(
        [(name, request.GET[name]) for name in ("period", "agent") if request.GET.get(name)]
    )
    query = question.query + (f"&{drill}" if drill else "")
    rules = history.kpi_rules_get(queues=question.queues)
    rows = [
        {
            "call": call,
            "short": reports.is_short_abandon(call.outcome, call.wait, rules.get(call.queue)),
        }
        for call in page.records
    ]
    return render(
        request,
        "boards/_report_calls.html",
        {
            "title": title,
            "page": page,
            "rows": rows,
            "csv_url": reverse("report_calls_csv") + "?" + query,
        },
    )


# --- CSV exports --------------------------------------------------------------------------------


def _csv_response(request: HttpRequest, *, filename: str, chunks: Iterator[str]):
    """A streamed CSV download. Under ASGI (Daphne) the chunks are pulled through an async
    iterator, one ``sync_to_async`` step at a time: Django would read a plain iterator into a
    list before sending it, which is exactly what an export of a year must not do."""
    content = _pulled(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


async def _pulled(chunks: Iterator[str]) -> AsyncIterator[str]:
    step = sync_to_async(next, thread_sensitive=True)
    try:
        while (chunk := await step(chunks, None)) is not None:
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=True)()


def _batched(header: tuple[str, ...], rows: Iterator[list[object]]) -> Iterator[str]:
    """The header (after the byte-order mark), then the rows in chunks."""
    yield reports.CSV_BOM + reports.csv_text([header])
    batch: list[list[object]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CSV_BATCH_ROWS:
            yield reports.csv_text(batch)
            batch = []
    if batch:
        yield reports.csv_text(batch)


def _csv_question(request: HttpRequest, *, check_span: bool = True) -> Question:
    allowed = _reportable(request.user)
    return _question(request, allowed=allowed, now=timezone.now(), check_span=check_span)[0]


def _bad_csv(bad: BadQuestion) -> HttpResponse:
    text = " ".join(str(e) for errors in bad.form.errors.values() for e in errors)
    return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")


def _filename(table: str, question: Question) -> str:
    return f"{table}_{question.date_from}_{question.date_to}.csv"


@never_cache
@login_required
def report_intervals_csv(request: HttpRequest) -> HttpResponse:
    """Each period's figures per queue (and the selection's): the page's charts as a table."""
    try:
        question = _csv_question(request)
    except BadQuestion as bad:
        return _bad_csv(bad)
    try:
        report = history.report_figures(
            queues=question.queues,
            date_from=question.date_from,
            date_to=question.date_to,
            interval=question.interval,
            detail=False,
        )
    except QueryInvalid as error:  # more figures than one export may hold
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
    chunks = _batched(reports.INTERVAL_COLUMNS, reports.interval_rows(report))
    return _csv_response(request, filename=_filename("intervals", question), chunks=chunks)


@never_cache
@login_required
def report_agents_csv(request: HttpRequest) -> HttpResponse:
    """The agents table of the page."""
    try:
        question = _csv_question(request)
    except BadQuestion as bad:
        return _bad_csv(bad)
    report = history.report_figures(
        queues=question.queues,
        date_from=question.date_from,
        date_to=question.date_to,
        interval=question.interval,
        queue_periods=False,
    )
    rows = reports.agent_rows(report.agents, answered=report.selection_total.answered)
    chunks = _batched(reports.AGENT_COLUMNS, rows)
    return _csv_response(request, filename=_filename("agents", question), chunks=chunks)


@never_cache
@login_required
def report_calls_csv(request: HttpRequest) -> HttpResponse:
    """Every call of the range (or of a drill-down's period or agent), oldest first, read a
    day at a time: any range streams, whatever its length."""
    try:
        question = _csv_question(request, check_span=False)
        calls, agent, _title = _drill(request, question)
    except BadQuestion as bad:
        return _bad_csv(bad)
    except QueryInvalid as error:
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
    rules = history.kpi_rules_get(queues=question.queues)
    zone = history.pbx_zone()

    def rows() -> Iterator[list[object]]:
        for day in days_of(calls.date_from, calls.date_to):
            found = history.queue_calls_of_day(
                queues=question.queues, day=day, slots=calls.slots, agent=agent or None
            )
            yield from reports.call_rows(found, zone=zone, rules=rules)

    chunks = _batched(reports.CALL_COLUMNS, rows())
    return _csv_response(request, filename=_filename("calls", question), chunks=chunks)

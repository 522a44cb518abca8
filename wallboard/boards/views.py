"""The pages: home, supervisor console, TV boards (logged-in and kiosk), audit, login."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache

from wallboard.boards import selectors
from wallboard.boards.forms import AuditFilterForm
from wallboard.boards.kiosks import kiosk_from_token
from wallboard.boards.models import Board, QueueDisplay, queue_list_parse
from wallboard.boards.ui_strings import (
    js_strings,
    member_states,
    missed_strings,
    outcome_words,
    taking_calls_states,
)
from wallboard.control.access import (
    actionable_queues,
    can_audit,
    can_report,
    is_admin,
    role_of,
    visible_queues,
)
from wallboard.control.selectors import (
    call_back_default_get,
    missed_caller_queues,
    missed_callers_list,
)
from wallboard.history.selectors import pbx_zone
from wallboard.live import selectors as live

AUDIT_PAGE_SIZE = 50


# A page shows at most this many queues (the websocket refuses more).
MAX_PAGE_QUEUES = 200
# How often the console reads the missed callers again (it also does after a call back and
# when the call history publishes today's figures).
MISSED_REFRESH_SECONDS = 20


class BadQueues(ValueError):
    """The ``queues`` parameter is not a list of queue numbers."""


def _requested_queues(request: HttpRequest) -> list[int] | None:
    try:
        queues = queue_list_parse(request.GET.get("queues", ""))
    except ValueError as error:
        raise BadQueues(str(error)) from None
    if len(queues) > MAX_PAGE_QUEUES:
        raise BadQueues(f"at most {MAX_PAGE_QUEUES} queues")
    return queues or None


def _page_config(*, ws_path: str, data: selectors.PageData, board: Board | None) -> dict:
    """Everything a page's JS needs, as one json_script object."""
    return {
        "ws_path": ws_path,
        "time_zone": settings.TIME_ZONE,
        "queues": [q.as_json() for q in data.queues],
        "snapshots": data.snapshots(),
        "pbx": data.pbx,
        # Snapshots change only on a real change; this says how fresh the unchanged data is.
        "fresh_at": live.fresh_at_get(),
        "freshness": selectors.freshness_limits(),
        "board": selectors.board_settings(board),
        "strings": js_strings(),
        "states": member_states(),
        "taking_calls": taking_calls_states(),
        "thresholds": QueueDisplay().thresholds(),
        "heartbeat": float(settings.WS_HEARTBEAT_SECONDS),
    }


@login_required
def home(request: HttpRequest) -> HttpResponse:
    allowed = visible_queues(request.user)
    queues = [row for row in selectors.known_queues() if allowed is None or row["queue"] in allowed]
    displays = selectors.display_config([row["queue"] for row in queues])
    for row in queues:
        display = displays[row["queue"]]
        row["display_name"] = display.display_name or row.get("name") or str(row["queue"])
    actionable = actionable_queues(request.user)
    return render(
        request,
        "boards/home.html",
        {
            "queues": queues,
            "boards": Board.objects.all(),
            "role": role_of(request.user),
            "actionable": sorted(actionable) if actionable is not None else None,
            "can_audit": can_audit(request.user),
            "is_admin": is_admin(request.user),
            "pbx": live.pbx_state_get(),
        },
    )


@never_cache
@login_required
def console(request: HttpRequest) -> HttpResponse:
    try:
        wanted = _requested_queues(request)
    except BadQueues as error:
        return HttpResponseBadRequest(
            gettext("The queues parameter must be queue numbers separated by commas: %(error)s")
            % {"error": error}
        )
    queues = selectors.page_queues(wanted=wanted, allowed=visible_queues(request.user))
    actionable = actionable_queues(request.user)
    data = selectors.page_data(queues=queues, actionable=actionable)
    can_act_any = any(q.can_act for q in data.queues)
    # Queues that appear later (a new PBX queue, a console opened before the first poll) may be
    # ones this user acts on: the page then needs the controls' template and the extensions.
    may_act = actionable is None or bool(actionable)
    ws_path = "/ws/board/" + (f"?queues={','.join(map(str, queues))}" if wanted else "")
    config = _page_config(ws_path=ws_path, data=data, board=None)
    config["extensions"] = selectors.extension_choices() if may_act else []
    missed = None
    if can_report(request.user):
        missed = _missed_callers(request, config)
    return render(
        request,
        "boards/console.html",
        {
            "data": data,
            "config": config,
            "can_act_any": can_act_any,
            "may_act": may_act,
            "act_queue": {"queue": "", "name": "", "can_act": True},
            "missed": missed,
        },
    )


def _missed_callers(request: HttpRequest, config: dict) -> list[selectors.MissedCallerRow]:
    """Today's missed callers for the console: rows for the first paint, and what the page's
    script needs to keep them fresh and call back (added to ``config``)."""
    entries = missed_callers_list(user=request.user, queues=missed_caller_queues(user=request.user))
    names = selectors.queue_names()
    zone = pbx_zone()
    config["missed"] = {
        "url": reverse("api:missed-caller-list"),
        "call_back_url": reverse("api:missed-caller-call-back", kwargs={"id": 0}).replace(
            "/0/", "/{id}/"
        ),
        "refresh_seconds": MISSED_REFRESH_SECONDS,
        "callers": [entry.as_json(zone=zone) for entry in entries],
        "default_extension": call_back_default_get(user=request.user),
        "queue_names": {str(number): name for number, name in names.items()},
    }
    return selectors.missed_caller_rows(
        entries, names=names, strings=missed_strings(), outcomes=outcome_words()
    )


@never_cache
@login_required
def board_tv(request: HttpRequest, slug: str) -> HttpResponse:
    board = get_object_or_404(Board, slug=slug)
    queues = selectors.page_queues(wanted=board.queues, allowed=visible_queues(request.user))
    data = selectors.page_data(queues=queues, actionable=set())
    ws_path = "/ws/board/" + (f"?queues={','.join(map(str, queues))}" if board.queues else "")
    return _tv_render(request, data=data, board=board, ws_path=ws_path, title=board.name)


@never_cache
def kiosk(request: HttpRequest, token: str) -> HttpResponse:
    found = kiosk_from_token(token)
    if found is None:
        return render(request, "boards/kiosk_gone.html", status=404)
    board = Board.objects.filter(pk=found.board_id).first() if found.board_id else None
    wanted = None
    if found.queues is not None:
        order = board.queues if board is not None and board.queues else sorted(found.queues)
        wanted = [q for q in order if q in found.queues] or sorted(found.queues)
    queues = selectors.page_queues(wanted=wanted, allowed=None)
    data = selectors.page_data(queues=queues, actionable=set())
    ws_path = f"/ws/kiosk/{token}/"
    response = _tv_render(request, data=data, board=board, ws_path=ws_path, title=found.name)
    # The URL is the credential: never hand it to another site in a Referer.
    response["Referrer-Policy"] = "no-referrer"
    return response


def _tv_render(
    request: HttpRequest, *, data: selectors.PageData, board: Board | None, ws_path: str, title: str
) -> HttpResponse:
    config = _page_config(ws_path=ws_path, data=data, board=board)
    return render(request, "boards/tv.html", {"data": data, "config": config, "title": title})


@login_required
def audit(request: HttpRequest) -> HttpResponse:
    if not can_audit(request.user):
        raise PermissionDenied("Only team leads and admins see the audit trail")
    allowed = actionable_queues(request.user)
    form = AuditFilterForm(request.GET or None)
    valid = form.is_valid() if form.is_bound else True
    filters = form.cleaned_data if form.is_bound and valid else {}
    rows = selectors.audit_actions(user=request.user, filters=filters)
    page = Paginator(rows if valid else rows.none(), AUDIT_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    page.object_list = list(page.object_list)  # read once, then given their call-back lines
    selectors.audit_call_backs(page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "boards/audit.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "scope": sorted(allowed) if allowed is not None else None,
            "unknown_after": selectors.audit_unknown_after(),
        },
        status=200 if valid else 400,
    )

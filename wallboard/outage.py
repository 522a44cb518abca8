"""What a request gets while Redis or the database is away: 503 with a small page that retries
by itself (a wallroom TV that reloads during an outage comes back without a person), or JSON for
the API. Rendered without a template, a database or Redis: nothing it needs can be down.
"""

from __future__ import annotations

import sys

import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.csrf import requires_csrf_token

from pbxapi.errors import BudgetUnavailable

# The failures that mean "a service we depend on is away", not a bug. A database error that is
# not about reaching it (a bad query, a broken constraint) is a bug and stays a 500.
DATABASE_OUTAGES = (OperationalError, InterfaceError)
OUTAGES = (redis.RedisError, *DATABASE_OUTAGES, BudgetUnavailable)
RETRY_SECONDS = 10

_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{retry}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""


def is_outage(error: BaseException | None) -> bool:
    return isinstance(error, OUTAGES)


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: a 503 that retries when a service is away, else a plain 500."""
    error = sys.exc_info()[1]
    if not is_outage(error):
        return HttpResponseServerError(
            _PAGE.format(
                lang="en",
                retry=60,
                title="Server error",
                text="Something went wrong; the page tries again in a minute.",
            )
        )
    return outage_response(request)


def outage_response(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"detail": gettext("The wallboard's database or Redis is unavailable; try again.")},
            status=503,
        )
    else:
        response = HttpResponse(
            _PAGE.format(
                lang=getattr(request, "LANGUAGE_CODE", "en"),
                retry=RETRY_SECONDS,
                title=gettext("The wallboard is restarting"),
                text=gettext("This page reloads by itself in a few seconds."),
            ),
            status=503,
        )
    response["Retry-After"] = str(RETRY_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class OutageMiddleware:
    """Turns a view's outage (Redis or the database away) into ``outage_response``, in DEBUG
    too; failures outside views (a session saved while the database is down) reach
    ``server_error``."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_outage(exception):
            return outage_response(request)
        return None

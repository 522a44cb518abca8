"""What a request for a path that does not exist gets: under /api/ the API's own JSON error (a
program reads ``detail`` there for every error), elsewhere the site's page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.exceptions import NotFound


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's handler404."""
    if request.path.startswith("/api/"):
        # DRF's own words, so that this 404 reads like those of the API's views.
        return JsonResponse({"detail": str(NotFound.default_detail)}, status=404)
    return defaults.page_not_found(request, exception)

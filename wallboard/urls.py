from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("wallboard.api.urls")),
    path("", include("wallboard.boards.urls")),
]

# A path nothing answers: JSON under /api/ like every API error, the site's page elsewhere.
handler404 = "wallboard.errors.not_found"
# Redis or the database away: 503 with a page that retries by itself (wallboard.outage).
handler500 = "wallboard.outage.server_error"

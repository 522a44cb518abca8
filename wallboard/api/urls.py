from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from wallboard.api import views

app_name = "api"

# An action's queue and extension are taken as any path segment: the action service answers
# anything but a positive whole number with a 400 that says so (docs/api.md), where the int
# converter would have made "abc" a bare 404.
urlpatterns = [
    path("queues/", views.QueueListView.as_view(), name="queue-list"),
    path("queues/<int:queue>/", views.QueueDetailView.as_view(), name="queue-detail"),
    path(
        "queues/<str:queue>/members/<str:extension>/pause",
        views.MemberPauseView.as_view(),
        name="member-pause",
    ),
    path(
        "queues/<str:queue>/members/<str:extension>/unpause",
        views.MemberUnpauseView.as_view(),
        name="member-unpause",
    ),
    path(
        "queues/<str:queue>/members/<str:extension>/add",
        views.MemberAddView.as_view(),
        name="member-add",
    ),
    path(
        "queues/<str:queue>/members/<str:extension>/remove",
        views.MemberRemoveView.as_view(),
        name="member-remove",
    ),
    path("reports/queues/", views.QueueReportView.as_view(), name="report-queues"),
    path("reports/agents/", views.AgentReportView.as_view(), name="report-agents"),
    path("calls/", views.CallRecordListView.as_view(), name="call-list"),
    path("missed-callers/", views.MissedCallerListView.as_view(), name="missed-caller-list"),
    path(
        "missed-callers/<int:id>/call-back",
        views.MissedCallerCallBackView.as_view(),
        name="missed-caller-call-back",
    ),
    path("health/", views.HealthView.as_view(), name="health"),
    # The OpenAPI 3 document. No Swagger/Redoc page: drf-spectacular serves those from a CDN,
    # and this product loads nothing from third-party hosts.
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]

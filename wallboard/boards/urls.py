from django.contrib.auth import views as auth_views
from django.urls import path

from wallboard.boards import report_views, views

# Not namespaced: settings.LOGIN_URL / LOGOUT_REDIRECT_URL name "login".
urlpatterns = [
    path("", views.home, name="home"),
    path("console/", views.console, name="console"),
    path("boards/<slug:slug>/", views.board_tv, name="board_tv"),
    path("kiosk/<str:token>/", views.kiosk, name="kiosk"),
    path("audit/", views.audit, name="audit"),
    # Reports: the page, its drill-down (an HTML fragment) and its CSV exports.
    path("reports/", report_views.reports_page, name="reports"),
    path("reports/calls/", report_views.report_calls, name="report_calls"),
    path("reports/intervals.csv", report_views.report_intervals_csv, name="report_intervals_csv"),
    path("reports/agents.csv", report_views.report_agents_csv, name="report_agents_csv"),
    path("reports/calls.csv", report_views.report_calls_csv, name="report_calls_csv"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="boards/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]

from django.contrib.auth import views as auth_views
from django.urls import path

from wallboard.boards import views

# Not namespaced: settings.LOGIN_URL / LOGOUT_REDIRECT_URL name "login".
urlpatterns = [
    path("", views.home, name="home"),
    path("console/", views.console, name="console"),
    path("boards/<slug:slug>/", views.board_tv, name="board_tv"),
    path("kiosk/<str:token>/", views.kiosk, name="kiosk"),
    path("audit/", views.audit, name="audit"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="boards/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]

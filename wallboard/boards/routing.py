"""Websocket routes, all under /ws/ (docs/websocket.md)."""

from channels.auth import AuthMiddlewareStack
from django.urls import path

from wallboard.boards.consumers import BoardConsumer, KioskConsumer

websocket_urlpatterns = [
    # A board's user comes from the session cookie.
    path("ws/board/", AuthMiddlewareStack(BoardConsumer.as_asgi())),
    # A kiosk is identified by its token alone. Without the session middleware, no session
    # wrapper inspects every frame sent to the (many, long-lived) TVs: the fan-out's hot path.
    path("ws/kiosk/<str:token>/", KioskConsumer.as_asgi()),
]

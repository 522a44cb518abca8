"""Websocket routes, all under /ws/ (docs/websocket.md)."""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from wallboard.boards.consumers import BoardConsumer, KioskConsumer

websocket_urlpatterns = [
    # A board's user comes from the session cookie.
    path("ws/board/", AuthMiddlewareStack(BoardConsumer.as_asgi())),
    # A kiosk is identified by its token alone. Without the session middleware, no session
    # wrapper inspects every frame sent to the (many, long-lived) TVs: the fan-out's hot path.
    path("ws/kiosk/<str:token>/", KioskConsumer.as_asgi()),
    # Any other path: the handshake is refused, as for a foreign Origin. Without a route the
    # router raises, and the server logs an application error for every stray request.
    re_path(r"", WebsocketDenier.as_asgi()),
]

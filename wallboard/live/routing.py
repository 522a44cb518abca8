"""Websocket routes, all under /ws/ (docs/websocket.md)."""

from django.urls import path

from wallboard.live.consumers import BoardConsumer, KioskConsumer

websocket_urlpatterns = [
    path("ws/board/", BoardConsumer.as_asgi()),
    path("ws/kiosk/<str:token>/", KioskConsumer.as_asgi()),
]

"""`daphne bench.minimal_broadcast.asgi:application` — websockets only, at /ws/broadcast/."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.minimal_broadcast.settings")
django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from bench.minimal_broadcast.consumers import BroadcastConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/broadcast/", BroadcastConsumer.as_asgi())])}
)

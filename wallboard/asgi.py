"""ASGI entry point for Daphne: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallboard.settings")
# Django must be set up before the routing imports consumers (and through them, models).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from wallboard.boards.routing import websocket_urlpatterns  # noqa: E402
from wallboard.live import writethrough  # noqa: E402

# Under Daphne (Twisted), send each websocket frame at once instead of on the reactor's next turn.
writethrough.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The Origin must be one of ALLOWED_HOSTS (no cross-site websocket hijacking); the
        # session cookie identifies a board's user (routing.py), a kiosk's token is in its URL.
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)

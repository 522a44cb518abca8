"""Settings for the minimal broadcast: only what Channels needs. The channel layer is the default
core RedisChannelLayer with nothing tuned but a key prefix, so that runs never share keys."""

import os

SECRET_KEY = "minimal-broadcast-benchmark-only"  # noqa: S105 - serves no HTTP, signs nothing
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
ASGI_APPLICATION = "bench.minimal_broadcast.asgi.application"
USE_TZ = True

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")],
            "prefix": os.environ.get("MINIMAL_BROADCAST_PREFIX", "minimal-broadcast"),
        },
    }
}

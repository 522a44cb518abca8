"""Settings for the minimal broadcast: only what Channels needs. The channel layer is the default
core RedisChannelLayer with nothing tuned but a key prefix, so that runs never share keys."""

import os

SECRET_KEY = "minimal-broadcast-benchmark-only"  # noqa: S105 - serves no HTTP, signs nothing
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
ASGI_APPLICATION = "bench.minimal_broadcast.asgi.application"
USE_TZ = True

# MINIMAL_BROADCAST_LAYER=pubsub swaps in the pub/sub layer (defaults otherwise): an experiment
# that separates the layer's cost from the rest of an application.
LAYER_BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": LAYER_BACKENDS[os.environ.get("MINIMAL_BROADCAST_LAYER", "core")],
        "CONFIG": {
            "hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")],
            "prefix": os.environ.get("MINIMAL_BROADCAST_PREFIX", "minimal-broadcast"),
        },
    }
}

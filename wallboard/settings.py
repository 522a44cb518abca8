"""The one settings module. Every value that differs between machines comes from the environment
through the typed helpers in ``wallboard.envconfig``; README.md lists every variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from wallboard.envconfig import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_str,
    env_time_zone,
    env_url,
    local_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("WALLBOARD_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

# Never a key published in this repository: without SECRET_KEY (or SECRET_KEY_FILE) this machine
# makes its own once and keeps it in VAR_DIR, so `make run` and the manage.py commands beside it
# agree. Several web nodes must be given one shared SECRET_KEY.
SECRET_KEY = env_str("SECRET_KEY") or local_secret(VAR_DIR / "secret_key")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
# Where the product is reached from outside: the kiosk URLs that commands print, and the origin
# that may post forms and open websockets (CSRF_TRUSTED_ORIGINS defaults to it).
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [SITE_URL])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "wallboard.live",
    "wallboard.history",
    "wallboard.control",
    "wallboard.boards",
    "wallboard.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "wallboard.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wallboard.outage.OutageMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "wallboard.urls"
ASGI_APPLICATION = "wallboard.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_from_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    if parsed.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parsed.path)}
    raise ImproperlyConfigured(f"DATABASE_URL scheme {parsed.scheme!r} is not supported")


# SQLite by default so that a fresh checkout just runs; PostgreSQL via DATABASE_URL in production.
DATABASES = {
    "default": _database_from_url(
        env_str("DATABASE_URL", f"sqlite://{VAR_DIR / 'db.sqlite3'}")  # type: ignore[arg-type]
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Logins (/login/ and /admin/) go through django-axes first: after AXES_FAILURE_LIMIT failures for
# one username from one address, that pair is locked out for AXES_COOLOFF_TIME. Attempts are kept
# in the database, so every web process and node counts the same failures.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("LOGIN_LOCKOUT_MINUTES", 15.0, minimum=0.1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client's address is Daphne's: behind a proxy, Daphne takes it from X-Forwarded-For only when
# started with --proxy-headers (docs/deployment.md), so a client cannot forge it here.
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Slovak and English users; PBX times are Bratislava local time.
LANGUAGE_CODE = "en"
LANGUAGES = [("sk", _("Slovak")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_time_zone("TIME_ZONE", "Europe/Bratislava")
PBX_TIME_ZONE = env_time_zone("PBX_TIME_ZONE", "Europe/Bratislava")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            # The hashed manifest (cache-busting for TVs that never reload their assets) needs
            # collectstatic, which the Docker image runs; `make run` and tests serve from finders.
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

# --- Behind HTTPS (a TLS-terminating proxy in front of Daphne): one switch -----------------
HTTPS = env_bool("HTTPS", False)
# SECURE_COOKIES alone (older deployments) still marks the cookies secure.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS or env_bool("SECURE_COOKIES", False)
if HTTPS:
    # The proxy says which scheme the browser used; only a proxy that sets (and strips) this
    # header may be in front (docs/deployment.md).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # The container's own health check speaks plain HTTP to Daphne.
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]
    SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", False)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Everything the pages load comes from here: no CDN, no inline script, no third-party frame.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'; object-src 'none'"
)

# --- Redis: snapshots, the shared PBX request budget, the channel layer and Celery's broker ---
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Every key this installation writes starts with this, so that tests (and two installations
# sharing one Redis) never see each other's snapshots or budgets.
REDIS_KEY_PREFIX = env_str("REDIS_KEY_PREFIX", "wallboard")
# The PBX budget is per source IP: installations that share an egress IP must share this prefix.
PBX_BUDGET_KEY = env_str("PBX_BUDGET_KEY", f"{REDIS_KEY_PREFIX}:pbx-budget")

# --- The PBX ---
# With no PBX_API_URL the product talks to the embedded simulator that `make run` starts.
PBX_API_URL = env_str("PBX_API_URL") or None
SIMULATOR_HOST = env_str("SIMULATOR_HOST", "127.0.0.1")
SIMULATOR_PORT = env_int("SIMULATOR_PORT", 8089, minimum=0)
SIMULATOR_USER = env_str("SIMULATOR_USER", "wallboard")
SIMULATOR_SECRET = env_str("SIMULATOR_SECRET", "simulator")
if PBX_API_URL:
    PBX_BASE_URL = PBX_API_URL
    PBX_USER = env_str("PBX_API_USER", "")
    PBX_SECRET = env_str("PBX_API_PASSWORD", "")
    if not PBX_USER or not PBX_SECRET:
        raise ImproperlyConfigured(
            "PBX_API_URL is set, so PBX_API_USER and PBX_API_PASSWORD are too"
        )
else:
    PBX_BASE_URL = f"http://{SIMULATOR_HOST}:{SIMULATOR_PORT}/"
    PBX_USER = env_str("PBX_API_USER", SIMULATOR_USER)
    PBX_SECRET = env_str("PBX_API_PASSWORD", SIMULATOR_SECRET)
PBX_CONNECT_TIMEOUT = env_float("PBX_CONNECT_TIMEOUT", 3.0, minimum=0.1)
PBX_READ_TIMEOUT = env_float("PBX_READ_TIMEOUT", 10.0, minimum=0.1)
PBX_BUDGET_REQUESTS = env_int("PBX_BUDGET_REQUESTS", 18, minimum=1)
PBX_BUDGET_WINDOW = env_float("PBX_BUDGET_WINDOW", 5.0, minimum=0.1)
# The PBX's own limit (20 requests in any 5 s; one more blocks the IP for 30 minutes), the same
# variable as `python -m pbxapi` reads. A budget that could exceed it is refused at start-up: at
# most that many requests, over at least as long.
PBX_RATE_LIMIT = env_rate("PBX_RATE_LIMIT", (20, 5.0))
_limit_requests, _limit_seconds = PBX_RATE_LIMIT
if _limit_requests < PBX_BUDGET_REQUESTS:
    raise ImproperlyConfigured(
        f"PBX_BUDGET_REQUESTS={PBX_BUDGET_REQUESTS} is above the PBX's limit of "
        f"{_limit_requests} requests per {_limit_seconds:g} s (PBX_RATE_LIMIT)"
    )
if _limit_seconds > PBX_BUDGET_WINDOW:
    raise ImproperlyConfigured(
        f"PBX_BUDGET_WINDOW={PBX_BUDGET_WINDOW:g} is shorter than the PBX's window of "
        f"{_limit_seconds:g} s (PBX_RATE_LIMIT): the budget could exceed its limit"
    )
PBX_ACTION_RESERVE = env_int("PBX_ACTION_RESERVE", 1, minimum=0)
PBX_BLOCK_SECONDS = env_float("PBX_BLOCK_SECONDS", 1800.0, minimum=1)
if PBX_ACTION_RESERVE >= PBX_BUDGET_REQUESTS:
    raise ImproperlyConfigured("PBX_ACTION_RESERVE must be smaller than PBX_BUDGET_REQUESTS")

# --- Agent actions (wallboard.control) ---
# Per user, across every process and both the API and the boards' websockets.
ACTIONS_PER_USER_PER_MINUTE = env_int("ACTIONS_PER_USER_PER_MINUTE", 30, minimum=1)
# How long a call back keeps its number to itself when the call records show no outcome (the
# agent never picked up, the PBX could not dial): then anyone may call the number back again.
CALLBACK_CLAIM_SECONDS = env_float("CALLBACK_CLAIM_SECONDS", 600.0, minimum=30)

# --- Polling (wallboard.live) ---
POLL_TICK_SECONDS = env_float("POLL_TICK_SECONDS", 1.0, minimum=0.2)
POLL_EXTENSIONS_SECONDS = env_float("POLL_EXTENSIONS_SECONDS", 60.0, minimum=5)
POLL_QUEUE_LIST_SECONDS = env_float("POLL_QUEUE_LIST_SECONDS", 300.0, minimum=10)
# Queues that no open board watches are refreshed at most this often.
POLL_UNWATCHED_SECONDS = env_float("POLL_UNWATCHED_SECONDS", 30.0, minimum=1)
# After PBX timeouts/5xx the poller waits base * 2^(failures-1) seconds (with jitter), capped.
POLL_BACKOFF_BASE_SECONDS = env_float("POLL_BACKOFF_BASE_SECONDS", 1.0, minimum=0.05)
POLL_BACKOFF_MAX_SECONDS = env_float("POLL_BACKOFF_MAX_SECONDS", 60.0, minimum=0.1)
# Every heartbeat a consumer also re-joins its groups and renews its watcher registration
# (which expires after WS_WATCHER_TTL_HEARTBEATS missed heartbeats).
WS_HEARTBEAT_SECONDS = env_float("WS_HEARTBEAT_SECONDS", 5.0, minimum=0.05)
# Boards: data older than NOTICE shows "data from HH:MM:SS (N s ago)"; older than STALE greys out.
BOARD_NOTICE_SECONDS = env_float("BOARD_NOTICE_SECONDS", 10.0, minimum=1)
BOARD_STALE_SECONDS = env_float("BOARD_STALE_SECONDS", 30.0, minimum=1)
WS_WATCHER_TTL_HEARTBEATS = 3
# How often an open kiosk re-checks its token in the database (revocation also closes it at once
# through the channel layer; this is the backstop).
WS_RECHECK_SECONDS = env_float("WS_RECHECK_SECONDS", 30.0, minimum=0.05)
# How often an open board of a logged-in user re-checks its session and rights (logout,
# deactivation and role changes also reach it at once; this is the backstop).
WS_USER_RECHECK_SECONDS = env_float("WS_USER_RECHECK_SECONDS", 5.0, minimum=0.05)

# --- Call history (wallboard.history) ---
# Today's new call records are stored this often (one background request, two while yesterday
# is still settling); the Celery beat entry of `wallboard.history.cdr_poll` uses it.
CDR_POLL_SECONDS = env_float("CDR_POLL_SECONDS", 60.0, minimum=10)
# Calls that start before midnight and end after it are listed under yesterday once they end:
# yesterday is read again until this long after midnight, then once more in full (rows changed
# since, e.g. deleted recordings, are updated) and never again.
CDR_SETTLE_SECONDS = env_float("CDR_SETTLE_SECONDS", 7200.0, minimum=0)
# Call records older than this many days are deleted (0 = keep everything).
CDR_RETENTION_DAYS = env_int("CDR_RETENTION_DAYS", 0, minimum=0)

# --- Channels ---
# The pub/sub layer: no group_expiry to silently drop a TV after 24 h, one Redis message per
# process per group_send. It loses messages while Redis is away, so clients resync on
# reconnect (docs/architecture.md, "Channel layer").
# channels_redis 4.3 passes every key of a host dict except "address" straight to redis-py's
# ConnectionPool.from_url (channels_redis/utils.py create_pool), one pool per event loop.
# Its subscriber reads with its own 0.1 s timeout (pubsub.py _do_receiving), so socket_timeout
# bounds only commands (PUBLISH, SUBSCRIBE): finite, so that a hung Redis fails a push instead
# of hanging the poller; an idle TV subscription is not affected (tests/live/test_channel_layer).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": env_float("REDIS_SOCKET_TIMEOUT", 5.0, minimum=0.1),
                    "socket_connect_timeout": 5,
                    "socket_keepalive": True,
                    # PING an idle connection before using it, to find a dead one early.
                    "health_check_interval": 30,
                    # Per process and event loop; bounds concurrent PUBLISH connections.
                    "max_connections": env_int("REDIS_MAX_CONNECTIONS", 1000, minimum=10),
                }
            ],
            "prefix": f"{REDIS_KEY_PREFIX}:channels",
        },
    }
}

# --- Celery ---
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", f"{REDIS_KEY_PREFIX}-tasks")
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "wallboard.schedule:SteadyScheduler"
# Logging is Django's (LOGGING): one handler, one line per record, secrets redacted.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- REST API ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "wallboard.api.tokens.ApiTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "VIPTel wallboard API",
    "DESCRIPTION": "Live queue snapshots and agent actions for the VIPTel hosted PBX.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # One name for a choice set that several fields share.
    "ENUM_NAME_OVERRIDES": {"ServiceLevelFormulaEnum": "wallboard.history.kpi.FORMULAS"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "wallboard.logs.RedactSecrets"},
        "one_line_refusals": {"()": "wallboard.logs.OneLineRefusals"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["one_line_refusals", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's default configuration gives these their own console handler: with the root's
        # every record would be printed twice. They go to the root's handler only.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        "daphne": {"level": "WARNING"},
        # The poll runs every second: one "sent"/"succeeded" line each would drown what matters.
        "celery.beat": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
    },
}

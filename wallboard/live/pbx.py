"""The process-wide PBX client, its shared request budget and the Redis connection they use.

Every PBX request made by Django code (poller, actions, API) goes through ``pbx_client()``, whose
budget lives in Redis so that every process behind the same egress IP shares the PBX's rate limit.
The objects are built lazily from settings and rebuilt when those settings change (tests point
them at a simulator with ``override_settings``/pytest-django's ``settings``).
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import redis
from django.conf import settings
from django.db.models import F
from django.db.models.functions import Greatest

from pbxapi.budget import RedisBudget
from pbxapi.client import PBXClient, exchange_hold
from wallboard.live.models import PBXBlock

# A Redis command that takes longer than this is a broken Redis, not a slow one: fail loudly
# instead of hanging a poll tick or a websocket connect.
REDIS_SOCKET_TIMEOUT_SECONDS = 5.0


class _Config(NamedTuple):
    redis_url: str
    base_url: str
    user: str
    secret: str
    connect_timeout: float
    read_timeout: float
    budget_key: str
    budget_requests: int
    budget_window: float
    action_reserve: int
    block_seconds: float
    rate_limit: tuple[int, float]
    time_zone: str


class _Objects(NamedTuple):
    config: _Config
    redis: redis.Redis
    budget: RedisBudget
    client: PBXClient


_lock = threading.Lock()
_objects: _Objects | None = None
_redis_clients: dict[str, redis.Redis] = {}


def _config() -> _Config:
    return _Config(
        redis_url=settings.REDIS_URL,
        base_url=settings.PBX_BASE_URL,
        user=settings.PBX_USER,
        secret=settings.PBX_SECRET,
        connect_timeout=settings.PBX_CONNECT_TIMEOUT,
        read_timeout=settings.PBX_READ_TIMEOUT,
        budget_key=settings.PBX_BUDGET_KEY,
        budget_requests=settings.PBX_BUDGET_REQUESTS,
        budget_window=settings.PBX_BUDGET_WINDOW,
        action_reserve=settings.PBX_ACTION_RESERVE,
        block_seconds=settings.PBX_BLOCK_SECONDS,
        rate_limit=tuple(settings.PBX_RATE_LIMIT),
        time_zone=settings.PBX_TIME_ZONE,
    )


def redis_connection() -> redis.Redis:
    """A thread-safe Redis client (text answers) for the live data; one pool per Redis URL."""
    url = settings.REDIS_URL
    client = _redis_clients.get(url)
    if client is None:
        with _lock:
            client = _redis_clients.get(url)
            if client is None:
                client = redis.Redis.from_url(
                    url,
                    decode_responses=True,
                    socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
                    socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
                    health_check_interval=30,
                )
                _redis_clients[url] = client
    return client


class DatabaseBlockStore:
    """The budget's block store (``pbxapi.budget.BlockStore``) in the database: a 403's block
    survives a Redis restart or flush. The budget logs and survives a failing store."""

    def __init__(self, budget_key: str) -> None:
        self.budget_key = budget_key

    def load(self) -> float | None:
        row = PBXBlock.objects.filter(budget_key=self.budget_key).first()
        return row.until if row is not None else None

    def save(self, until: float) -> None:
        # Never shortens a longer block another process recorded.
        updated = PBXBlock.objects.filter(budget_key=self.budget_key).update(
            until=Greatest(F("until"), until)
        )
        if not updated:
            PBXBlock.objects.get_or_create(budget_key=self.budget_key, defaults={"until": until})


def _build(config: _Config) -> _Objects:
    connection = redis.Redis.from_url(
        config.redis_url,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )
    budget = RedisBudget(
        connection,
        key=config.budget_key,
        requests=config.budget_requests,
        window=config.budget_window,
        reserve=config.action_reserve,
        block_seconds=config.block_seconds,
        # Every process sharing the key uses the same timeouts, so this is the longest any of
        # them holds a slot: the cold start after Redis lost its memory waits that long.
        max_hold=exchange_hold(
            connect_timeout=config.connect_timeout, read_timeout=config.read_timeout
        ),
        pbx_limit=config.rate_limit,
        block_store=DatabaseBlockStore(config.budget_key),
    )
    client = PBXClient(
        config.base_url,
        config.user,
        config.secret,
        budget=budget,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        time_zone=config.time_zone,
    )
    return _Objects(config=config, redis=connection, budget=budget, client=client)


def _current() -> _Objects:
    global _objects
    config = _config()
    objects = _objects
    if objects is None or objects.config != config:
        with _lock:
            objects = _objects
            if objects is None or objects.config != config:
                objects = _build(config)
                _objects = objects
    return objects


def pbx_client() -> PBXClient:
    """The process's PBX client; its budget is the shared ``RedisBudget`` on PBX_BUDGET_KEY."""
    return _current().client


def pbx_budget() -> RedisBudget:
    """The shared request budget that ``pbx_client()`` spends (for health and the poller)."""
    return _current().budget


def pbx_reset() -> None:
    """Forget the client and budget; the next call builds them from the current settings."""
    global _objects
    with _lock:
        _objects = None

"""Where the live data lives in Redis, and the small atomic operations on it.

Every key starts with ``settings.REDIS_KEY_PREFIX`` (docs/contracts.md lists the public ones:
``snapshot:{queue}``, ``queues``, ``pbx``). Redis is the single source of truth shared by the
poller (Celery), the web processes (first paint, API) and the consumers (Daphne), so a restart of
any of them loses nothing. Times in Redis are Unix timestamps (floats).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis
from django.conf import settings

from wallboard.live.pbx import redis_connection

# Sources whose last answer the poller keeps to rebuild snapshots without asking the PBX again.
SOURCE_CALLS = "calls"
SOURCE_EXTENSIONS = "extensions"
SOURCE_QUEUES = "queues"


QUEUE_STATUS_PREFIX = "queue_status:"


def source_queue_status(queue: int) -> str:
    return f"{QUEUE_STATUS_PREFIX}{queue}"


def key(*parts: object) -> str:
    return ":".join([settings.REDIS_KEY_PREFIX, *(str(p) for p in parts)])


def _loads(raw: str | None) -> Any:
    return json.loads(raw) if raw is not None else None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- sources (the PBX's last answers, normalised) -----------------------------------------


def source_get(name: str) -> dict[str, Any] | None:
    return _loads(redis_connection().get(key("source", name)))


def source_set(name: str, value: dict[str, Any]) -> None:
    redis_connection().set(key("source", name), _dumps(value))


def sources_get(names: list[str]) -> dict[str, dict[str, Any] | None]:
    if not names:
        return {}
    raws = redis_connection().mget([key("source", n) for n in names])
    return {name: _loads(raw) for name, raw in zip(names, raws, strict=True)}


def known_queues() -> list[dict[str, Any]]:
    """Every queue in the last queue list, as ``{"queue", "name"}``; [] before the first fetch."""
    queue_list = source_get(SOURCE_QUEUES)
    return queue_list["queues"] if queue_list else []


def sources_and_today_get(
    names: list[str],
) -> tuple[dict[str, dict[str, Any] | None], dict[str, Any] | None]:
    """These sources and today's published figures (``today_get``), in one round trip."""
    raws = redis_connection().mget([key("source", n) for n in names] + [key("kpi-today")])
    *source_raws, today_raw = raws
    sources = {name: _loads(raw) for name, raw in zip(names, source_raws, strict=True)}
    return sources, _loads(today_raw)


# --- today's figures, published by the call history (services.kpi_publish) ----------------


def today_get() -> dict[str, Any] | None:
    return _loads(redis_connection().get(key("kpi-today")))


def today_replace(publication: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """Store a publication of today's figures unless the stored one was computed later (two
    publishers at once: the slower must not bring older figures back). Returns (the stored one
    before, whether ``publication`` was stored)."""
    today_key = key("kpi-today")
    with redis_connection().pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(today_key)
                before = _loads(pipe.get(today_key))
                if before is not None and before["computed_at"] > publication["computed_at"]:
                    pipe.unwatch()
                    return before, False
                pipe.multi()
                pipe.set(today_key, _dumps(publication))
                pipe.execute()
                return before, True
            except redis.WatchError:
                continue


# --- when each source was last attempted / last fetched -----------------------------------


def attempts_get() -> dict[str, float]:
    return {k: float(v) for k, v in redis_connection().hgetall(key("attempted")).items()}


def attempt_note(source: str, *, at: float) -> None:
    redis_connection().hset(key("attempted"), source, repr(at))


# KEYS[1] the attempts hash. ARGV[1] source, ARGV[2] the time we noted, ARGV[3] the time before
# it ("" = never attempted). Puts the old time back only if ours is still there: a refresh that
# noted the source meanwhile (another process) is newer and stays.
_ATTEMPT_UNDO_LUA = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""


def attempt_undo(source: str, *, at: float, previous: float | None) -> None:
    """Take back the attempt noted ``at`` (nothing was sent): the source keeps its place."""
    connection = redis_connection()
    connection.eval(
        _ATTEMPT_UNDO_LUA,
        1,
        key("attempted"),
        source,
        repr(at),
        "" if previous is None else repr(previous),
    )


def attempt_forget(source: str) -> None:
    """Make ``source`` due at once (as if never attempted)."""
    redis_connection().hdel(key("attempted"), source)


def success_note(source: str, *, at: float, fresh: bool = True) -> None:
    """The PBX answered ``source`` at ``at``; ``fresh``: the boards' data is as new as that
    (the heartbeat's ``fresh_at``)."""
    connection = redis_connection()
    with connection.pipeline(transaction=False) as pipe:
        pipe.hset(key("fetched"), source, repr(at))
        if fresh:
            pipe.set(key("fresh-at"), repr(at))
        pipe.execute()


def successes_get() -> dict[str, float]:
    return {k: float(v) for k, v in redis_connection().hgetall(key("fetched")).items()}


def fresh_at_get() -> float | None:
    raw = redis_connection().get(key("fresh-at"))
    return float(raw) if raw is not None else None


# --- snapshots ----------------------------------------------------------------------------


def snapshot_get(queue: int) -> dict[str, Any] | None:
    return _loads(redis_connection().get(key("snapshot", queue)))


def snapshots_get(queues: Iterable[int]) -> dict[int, dict[str, Any]]:
    numbers = list(queues)
    if not numbers:
        return {}
    raws = redis_connection().mget([key("snapshot", q) for q in numbers])
    return {q: json.loads(raw) for q, raw in zip(numbers, raws, strict=True) if raw is not None}


def _version_next(last_version: int) -> int:
    """The version after ``last_version``: also at least the wall clock in milliseconds.

    Our Redis keeps nothing on disk; if it is restarted or wiped, the stored versions are gone
    while every open TV still remembers the highest version it saw and ignores anything older.
    Clock-based versions stay above what any client saw before the wipe, so boards keep updating.
    """
    return max(last_version + 1, int(time.time() * 1000))


def snapshot_replace(
    queue: int,
    build: Callable[[dict[str, Any] | None], dict[str, Any]],
    differs: Callable[[dict[str, Any] | None, dict[str, Any]], bool],
) -> tuple[dict[str, Any], bool]:
    """Rebuild a queue's snapshot from the stored one, atomically; returns (snapshot, changed).

    The version goes up only on a real change, and is kept in its own key so that it stays
    monotonic even if the snapshot key is lost. WATCH makes the poller and an action's refresh
    (another process) take turns instead of overwriting a newer snapshot with an older one.
    """
    snapshot_key, version_key = key("snapshot", queue), key("version", queue)
    with redis_connection().pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(snapshot_key, version_key)
                previous = _loads(pipe.get(snapshot_key))
                new = build(previous)
                changed = differs(previous, new)
                last_version = int(pipe.get(version_key) or 0)
                if previous is not None:
                    last_version = max(last_version, int(previous.get("version") or 0))
                new["version"] = _version_next(last_version) if changed else last_version
                pipe.multi()
                pipe.set(snapshot_key, _dumps(new))
                pipe.set(version_key, new["version"])
                pipe.hset(key("versions"), str(queue), new["version"])
                pipe.execute()
                return new, changed
            except redis.WatchError:
                continue


def versions_get(queues: list[int]) -> dict[int, int]:
    """The current snapshot version of each of these queues (those that have one)."""
    if not queues:
        return {}
    values = redis_connection().hmget(key("versions"), [str(q) for q in queues])
    return {q: int(v) for q, v in zip(queues, values, strict=True) if v is not None}


def queue_list_store(summaries: list[dict[str, Any]]) -> None:
    redis_connection().set(key("queues"), _dumps(summaries))


# --- PBX state ----------------------------------------------------------------------------


def pbx_state_raw() -> dict[str, Any] | None:
    return _loads(redis_connection().get(key("pbx")))


def pbx_state_replace(
    change: Callable[[dict[str, Any] | None], dict[str, Any]],
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Apply ``change`` to the stored PBX state atomically; returns (before, after)."""
    state_key = key("pbx")
    with redis_connection().pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(state_key)
                before = _loads(pipe.get(state_key))
                after = change(before)
                pipe.multi()
                pipe.set(state_key, _dumps(after))
                pipe.execute()
                return before, after
            except redis.WatchError:
                continue


# --- poller backoff and lock --------------------------------------------------------------


def backoff_get() -> dict[str, Any]:
    return _loads(redis_connection().get(key("backoff"))) or {"failures": 0, "until": 0.0}


def backoff_set(value: dict[str, Any]) -> None:
    redis_connection().set(key("backoff"), _dumps(value))


def backoff_clear() -> None:
    redis_connection().delete(key("backoff"))


# --- agent actions shown before the queue's next poll (services.member_action_show) --------

# Long past the queue's next poll, which makes an entry moot (even with the PBX down for hours).
_MEMBER_ACTIONS_TTL_SECONDS = 86400


def member_action_note(queue: int, extension: int, *, paused: bool, at: float) -> None:
    name = key("member-actions", queue)
    pipe = redis_connection().pipeline()
    pipe.hset(name, str(extension), _dumps({"paused": paused, "at": at}))
    pipe.expire(name, _MEMBER_ACTIONS_TTL_SECONDS)
    pipe.execute()


def member_actions_get(queues: list[int]) -> dict[int, dict[int, dict[str, Any]]]:
    """queue -> extension -> ``{"paused", "at"}`` of the last pause/unpause shown."""
    pipe = redis_connection().pipeline()
    for queue in queues:
        pipe.hgetall(key("member-actions", queue))
    return {
        queue: {int(extension): _loads(raw) for extension, raw in found.items()}
        for queue, found in zip(queues, pipe.execute(), strict=True)
        if found
    }


def poll_grid_get() -> dict[str, float] | None:
    """The poller's grid: its last slot, and the actions' demand as of ``at``."""
    grid = _loads(redis_connection().get(key("poll-grid")))
    # A bare number is a grid slot as older versions stored it.
    return {"slot": grid, "demand": None, "at": grid} if isinstance(grid, float) else grid


def poll_grid_set(grid: dict[str, float]) -> None:
    redis_connection().set(key("poll-grid"), _dumps(grid))


# Release only if the lock still holds our token: a tick that overran its TTL must not release
# the lock a newer tick now holds.
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLock:
    """A Redis lock with a TTL (a killed worker cannot hold it forever), released by token.
    ``name`` is its key under the prefix: one name per kind of run that must not overlap."""

    def __init__(self, name: str, ttl_seconds: float) -> None:
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.token = secrets.token_hex(16)
        self.key = key(name)

    def acquire(self, *, wait: float = 0.0) -> bool:
        """Take the lock, waiting up to ``wait`` seconds for its holder to release it."""
        deadline = time.monotonic() + wait
        while True:
            if redis_connection().set(self.key, self.token, nx=True, px=self.ttl_ms):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

    def release(self) -> bool:
        return bool(redis_connection().eval(_RELEASE_SCRIPT, 1, self.key, self.token))


class PollLock(RedisLock):
    """The poller's lock: two poll ticks never run at once."""

    def __init__(self, ttl_seconds: float) -> None:
        super().__init__("poll-lock", ttl_seconds)


# --- who is watching (consumers) ----------------------------------------------------------
# Sorted sets of channel names scored by when their registration expires: a Daphne process that
# dies without saying goodbye stops counting after a few missed heartbeats.


def watch_register(channel: str, queues: Iterable[int], *, ttl: float) -> None:
    expires = time.time() + ttl
    connection = redis_connection()
    with connection.pipeline(transaction=False) as pipe:
        _watch_renew(pipe, {channel: list(queues)}, expires=expires, ttl=ttl)
        pipe.execute()


def _watch_renew(pipe, registrations: dict[str, list[int]], *, expires: float, ttl: float) -> None:
    """Renew these registrations until ``expires``. A socket that died without unregistering
    stops counting at its expiry and is dropped from the set at the next renewal; a queue's set
    that nobody renews disappears a little later (its key's own expiry)."""
    now = time.time()
    keep = max(1, int(ttl * 2))
    if registrations:
        pipe.zadd(key("clients"), dict.fromkeys(registrations, expires))
    by_queue: dict[int, list[str]] = {}
    for channel, channel_queues in registrations.items():
        for queue in channel_queues:
            by_queue.setdefault(queue, []).append(channel)
    for queue, channels in by_queue.items():
        name = key("watchers", queue)
        pipe.zadd(name, dict.fromkeys(channels, expires))
        pipe.zremrangebyscore(name, "-inf", now)
        pipe.expire(name, keep)


def watch_unregister(channel: str, queues: Iterable[int]) -> None:
    connection = redis_connection()
    with connection.pipeline(transaction=False) as pipe:
        pipe.zrem(key("clients"), channel)
        for queue in queues:
            pipe.zrem(key("watchers", queue), channel)
        pipe.execute()


def heartbeat_round(
    registrations: dict[str, list[int]], *, ttl: float
) -> tuple[dict[int, int], float | None, list[int]]:
    """One round trip for a whole process's heartbeat: renew every consumer's registration and
    read the snapshot versions of all their queues, ``fresh-at`` and the known queues."""
    expires = time.time() + ttl
    queues = sorted({q for qs in registrations.values() for q in qs})
    connection = redis_connection()
    with connection.pipeline(transaction=False) as pipe:
        _watch_renew(pipe, registrations, expires=expires, ttl=ttl)
        pipe.hmget(key("versions"), [str(q) for q in queues] or ["-"])
        pipe.get(key("fresh-at"))
        pipe.get(key("source", SOURCE_QUEUES))
        *_registered, versions_raw, fresh_raw, queue_list_raw = pipe.execute()
    versions = {q: int(v) for q, v in zip(queues, versions_raw, strict=False) if v is not None}
    queue_list = _loads(queue_list_raw)
    known = [q["queue"] for q in queue_list["queues"]] if queue_list else []
    return versions, float(fresh_raw) if fresh_raw is not None else None, known


def watched_queues(queues: Iterable[int]) -> set[int]:
    numbers = list(queues)
    now = time.time()
    connection = redis_connection()
    with connection.pipeline(transaction=False) as pipe:
        for queue in numbers:
            pipe.zcount(key("watchers", queue), now, "+inf")
        counts = pipe.execute()
    return {q for q, count in zip(numbers, counts, strict=True) if count}


def clients_count() -> int:
    connection = redis_connection()
    now = time.time()
    with connection.pipeline(transaction=False) as pipe:
        # Forget registrations of processes that vanished, so the set does not grow forever.
        pipe.zremrangebyscore(key("clients"), "-inf", now)
        pipe.zcard(key("clients"))
        _removed, count = pipe.execute()
    return int(count)


# --- rate limits (a per-name sliding window shared by every process) ----------------------

# KEYS[1] the log (sorted set of µs times). ARGV[1] limit, ARGV[2] window µs, ARGV[3] a unique
# member. Returns 0 when taken, else µs until a place frees.
_RATE_TAKE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', now - window))
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return 0
"""


def rate_take(name: str, *, limit: int, window: float) -> float | None:
    """Take one place in ``name``'s sliding window of ``limit`` per ``window`` seconds, for
    every process at once. Returns None when taken, else the seconds until a place frees."""
    wait = redis_connection().eval(
        _RATE_TAKE_LUA,
        1,
        key("rate", name),
        limit,
        int(window * 1_000_000),
        secrets.token_hex(8),
    )
    return int(wait) / 1_000_000 if int(wait) else None


# --- when something last happened (a name per job: "cdr-read") -----------------------------


def mark_note(name: str, *, at: float) -> None:
    redis_connection().hset(key("marks"), name, repr(at))


def mark_get(name: str) -> float | None:
    raw = redis_connection().hget(key("marks"), name)
    return float(raw) if raw is not None else None

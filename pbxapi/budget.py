"""The request budget every PBX request must ask first.

The PBX allows 20 requests per 5 seconds per source IP and answers one more with a 403 for
30 minutes, to every process behind that IP. So the budget is strict: a sliding-window log of
grants, never more than ``requests`` in any ``window`` seconds (18 in 5 s by default, headroom
under the documented 20). Routine polling may not use the last ``reserve`` slots of a window, so
an agent action still finds room while pollers are saturated. After a 403 the budget refuses
everything until the block ends.

``RedisBudget`` shares all of that between every process and host that uses the same Redis key
(one atomic Lua script per decision, on Redis's own clock, so hosts with skewed clocks agree).
``LocalBudget`` does the same inside one process, for use without Redis.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import deque
from typing import Literal, Protocol

import redis

from pbxapi.errors import Blocked, BudgetExhausted, BudgetUnavailable, InvalidArgument

Priority = Literal["poll", "action"]
PRIORITIES: tuple[str, ...] = ("poll", "action")

# A slot frees the instant the oldest grant leaves the window; wake a hair later, plus a little
# jitter so processes that wait for the same slot do not all wake at once.
_WAKE_SLACK = 0.002
_WAKE_JITTER = 0.005


class Budget(Protocol):
    def acquire(self, *, priority: str = "poll", max_wait: float = 0.0) -> float:
        """Take one request slot, waiting up to ``max_wait`` seconds for one.

        Returns the grant time on the budget's clock (seconds). Raises ``Blocked`` while the PBX
        has us blocked and ``BudgetExhausted`` when no slot frees within ``max_wait``.
        """
        ...

    def report_blocked(self, seconds: float | None = None) -> float:
        """After a 403: refuse everything for ``seconds`` (default: block time); returns until."""
        ...

    def blocked_until(self) -> float | None:
        """Unix timestamp until which we are blocked, or None."""
        ...

    def used(self) -> int:
        """Requests granted in the last window."""
        ...


def _check_limits(requests: int, window: float, reserve: int, block_seconds: float) -> None:
    if requests < 1:
        raise ValueError("the budget needs at least one request per window")
    if window <= 0:
        raise ValueError("the budget window must be positive")
    if not 0 <= reserve < requests:
        raise ValueError("the action reserve must be at least 0 and below the request limit")
    if block_seconds <= 0:
        raise ValueError("the block time must be positive")


def _check_priority(priority: str) -> None:
    if priority not in PRIORITIES:
        raise InvalidArgument(f"Unknown budget priority {priority!r}; use 'poll' or 'action'")


def _sleep_for_slot(wait: float) -> None:
    time.sleep(wait + _WAKE_SLACK + random.uniform(0, _WAKE_JITTER))


# KEYS[1] grant log (sorted set, score = grant time in µs), KEYS[2] block (until, µs).
# ARGV[1] slots this priority may use, ARGV[2] window in µs, ARGV[3] a unique member.
# Returns {1, now} granted, {0, wait_µs} no slot yet, {-1, until} blocked.
_ACQUIRE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return {-1, blocked} end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
-- keep grants exactly one window old: they still count (strict)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', now - window))
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, now}
end
local freeing = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return {0, tonumber(freeing[2]) + window - now + 1}
"""

# KEYS[1] block key. ARGV[1] block length in µs. Never shortens a longer block. Returns until (µs).
_BLOCK_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ends = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > ends then ends = current end
local ttl = math.max(1, math.ceil((ends - now) / 1000))
redis.call('SET', KEYS[1], string.format('%d', ends), 'PX', ttl)
return ends
"""

# KEYS[1] grant log. ARGV[1] window in µs. Returns the number of grants in the last window.
_USED_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZCOUNT', KEYS[1], string.format('%d', now - tonumber(ARGV[1])), '+inf')
"""

_MICRO = 1_000_000


class RedisBudget:
    """The budget shared through Redis by every process and host using the same ``key``.

    Keys: ``{key}:log`` (grants of the last window) and ``{key}:blocked`` (block end); both
    expire on their own, so an idle installation leaves nothing behind.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        key: str,
        requests: int = 18,
        window: float = 5.0,
        reserve: int = 2,
        block_seconds: float = 1800.0,
    ) -> None:
        _check_limits(requests, window, reserve, block_seconds)
        self.redis = redis_client
        self.key = key
        self.requests = requests
        self.window = window
        self.reserve = reserve
        self.block_seconds = block_seconds
        self.log_key = f"{key}:log"
        self.block_key = f"{key}:blocked"
        self._acquire = redis_client.register_script(_ACQUIRE_LUA)
        self._block = redis_client.register_script(_BLOCK_LUA)
        self._used = redis_client.register_script(_USED_LUA)

    def acquire(self, *, priority: str = "poll", max_wait: float = 0.0) -> float:
        _check_priority(priority)
        limit = self.requests if priority == "action" else self.requests - self.reserve
        window_us = int(self.window * _MICRO)
        deadline = time.monotonic() + max(0.0, max_wait)
        while True:
            status, value = self._run(
                self._acquire,
                keys=[self.log_key, self.block_key],
                args=[limit, window_us, uuid.uuid4().hex],
            )
            if status == 1:
                return int(value) / _MICRO
            if status == -1:
                raise Blocked(until=int(value) / _MICRO)
            wait = int(value) / _MICRO
            if wait > deadline - time.monotonic():
                raise BudgetExhausted(wait)
            _sleep_for_slot(wait)

    def report_blocked(self, seconds: float | None = None) -> float:
        length = self.block_seconds if seconds is None else seconds
        until = self._run(self._block, keys=[self.block_key], args=[int(length * _MICRO)])
        return int(until) / _MICRO

    def blocked_until(self) -> float | None:
        try:
            value = self.redis.get(self.block_key)
        except redis.RedisError as exc:
            raise BudgetUnavailable(_redis_failure(exc)) from exc
        return int(value) / _MICRO if value else None

    def used(self) -> int:
        return int(self._run(self._used, keys=[self.log_key], args=[int(self.window * _MICRO)]))

    def _run(self, script, *, keys: list[str], args: list[object]):  # type: ignore[no-untyped-def]
        try:
            return script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise BudgetUnavailable(_redis_failure(exc)) from exc


def _redis_failure(exc: redis.RedisError) -> str:
    # The exception names host and port at most, never the URL's password.
    return f"The shared PBX request budget (Redis) is unavailable: {exc.__class__.__name__}"


class LocalBudget:
    """The same strict budget inside one process (thread-safe), for use without Redis."""

    def __init__(
        self,
        *,
        requests: int = 18,
        window: float = 5.0,
        reserve: int = 2,
        block_seconds: float = 1800.0,
    ) -> None:
        _check_limits(requests, window, reserve, block_seconds)
        self.requests = requests
        self.window = window
        self.reserve = reserve
        self.block_seconds = block_seconds
        self._lock = threading.Lock()
        self._grants: deque[float] = deque()  # monotonic grant times, oldest first
        self._blocked_until: float | None = None  # Unix time

    def acquire(self, *, priority: str = "poll", max_wait: float = 0.0) -> float:
        _check_priority(priority)
        limit = self.requests if priority == "action" else self.requests - self.reserve
        deadline = time.monotonic() + max(0.0, max_wait)
        while True:
            with self._lock:
                until = self._current_block()
                if until is not None:
                    raise Blocked(until=until)
                now = time.monotonic()
                self._forget_before(now - self.window)
                if len(self._grants) < limit:
                    self._grants.append(now)
                    return now
                wait = self._grants[len(self._grants) - limit] + self.window - now
            if wait > deadline - time.monotonic():
                raise BudgetExhausted(wait)
            _sleep_for_slot(wait)

    def report_blocked(self, seconds: float | None = None) -> float:
        length = self.block_seconds if seconds is None else seconds
        with self._lock:
            until = time.time() + length
            if self._blocked_until is not None and self._blocked_until > until:
                until = self._blocked_until
            self._blocked_until = until
            return until

    def blocked_until(self) -> float | None:
        with self._lock:
            return self._current_block()

    def used(self) -> int:
        with self._lock:
            self._forget_before(time.monotonic() - self.window)
            return len(self._grants)

    def _current_block(self) -> float | None:
        if self._blocked_until is not None and self._blocked_until <= time.time():
            self._blocked_until = None
        return self._blocked_until

    def _forget_before(self, cutoff: float) -> None:
        # Grants exactly one window old still count: strictly never more than N in any window.
        while self._grants and self._grants[0] < cutoff:
            self._grants.popleft()

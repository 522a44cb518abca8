"""The request budget every PBX request must ask first.

The PBX allows 20 requests per 5 seconds per source IP and answers one more with a 403 for
30 minutes, to every process behind that IP. So the budget is strict: a sliding-window log of
grants, never more than ``requests`` (N) in any ``window`` seconds (18 in 5 s by default,
headroom under the documented 20). After a 403 the budget refuses everything until the block
ends.

Three lanes share the N slots of a window; ``reserve`` (R) slots are kept for agent actions:

- ``"action"`` (an agent's pause/unpause/..., and its follow-up refresh): granted while the
  window holds fewer than N grants in all. Actions may use every slot.
- ``"poll"`` (the poller's round-robin): granted while the polls' *own* grants in the window
  are fewer than N - R, and the window holds fewer than N in all. Counting the polls' own grants
  (not the total against N - R) means actions that stay within the reserve never delay a poll:
  the reserve protects actions from polls *and* polls from actions. Only when actions and
  background requests together take more than R slots of a window do they push polls back.
- ``"background"`` (slow, deferrable fetches: the queue list, extension names, today's call
  records): granted while the window holds fewer than N - (R - 1) in all. They may borrow the
  reserve when actions do not need it (so they never take a slot of the polls' share, which
  keeps the polls' even spacing intact), but leave the last slot of a larger reserve for an
  action. With a one-slot reserve (the default) they may take that slot too: they are a few a
  minute, and an action that finds it taken claims the next slot that frees (below), a third of
  a second later. Callers ask with ``max_wait=0`` and simply try again later when refused.

So polls <= N - R and everything <= N in any window, whatever the mix; with R >= 2 an action
finds a slot at once even while polls and background requests saturate everything they may use.

How many slots the poller really leaves is its own business (``wallboard.live.poller`` leaves
more than R while actions use more): ``usage()`` tells it what the other lanes took.

The PBX counts requests as they arrive, we count grants: a request reaches the PBX some
milliseconds after its grant, and not always equally late. So a slot of the N is reused only
``guard`` seconds (50 ms) after its grant left the window: the "all grants < N" rule of actions
and polls counts over ``window + guard``. That costs nothing while the total stays below N
(polls alone use N - R) and keeps a full window at N as the PBX sees it. The polls' own share
and background's N - (R - 1), when below N (it leaves a slot anyway), count over the plain
window.

A refused request learns how long to wait: until the grant whose leaving makes its rule hold
leaves the window (for a poll, the later of its two rules).

An action that has to wait (more actions than the reserve holds, e.g. a burst of them) claims
the next slot that frees: while its claim lasts (its expected wait plus ``_CLAIM_SLACK``), polls
and background requests count it as taken. Polls keep their grid in step with the window, so
without the claim the poller would re-take every freed slot the instant it frees and an agent
could wait for seconds. Claims only exist when the whole window is taken, i.e. when actions and
background requests already hold more than the reserve, so they never delay a poll on account
of actions within the reserve.

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
from collections.abc import Callable
from typing import Literal, NamedTuple, Protocol

import redis

from pbxapi.errors import Blocked, BudgetExhausted, BudgetUnavailable, InvalidArgument

Priority = Literal["poll", "action", "background"]
PRIORITIES: tuple[str, ...] = ("poll", "action", "background")


class Usage(NamedTuple):
    """Grants in the last window: in all, the polls' own and the actions' (the rest is
    background)."""

    total: int
    polls: int
    actions: int


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

    def usage(self) -> Usage:
        """Requests granted in the last window: in all, on the poll lane, on the action lane."""
        ...


def _check_limits(
    requests: int, window: float, reserve: int, block_seconds: float, guard: float
) -> None:
    if requests < 1:
        raise ValueError("the budget needs at least one request per window")
    if window <= 0:
        raise ValueError("the budget window must be positive")
    if not 0 <= reserve < requests:
        raise ValueError("the action reserve must be at least 0 and below the request limit")
    if block_seconds <= 0:
        raise ValueError("the block time must be positive")
    if guard < 0:
        raise ValueError("the guard must not be negative")


def _check_priority(priority: str) -> None:
    if priority not in PRIORITIES:
        raise InvalidArgument(
            f"Unknown budget priority {priority!r}; use one of " + ", ".join(map(repr, PRIORITIES))
        )


def _limits(priority: str, requests: int, reserve: int) -> tuple[int, int | None]:
    """(limit on all grants, limit on the polls' own grants or None) for this lane."""
    if priority == "poll":
        return requests, requests - reserve
    if priority == "background":
        return requests - max(0, reserve - 1), None
    return requests, None


def _total_span(limit: int, requests: int, window: float, guard: float) -> float:
    """Over how long all grants are counted: the guard protects the PBX-facing limit N only.

    Below N (background's N - 1) a slot is left anyway; counting the guard there too would
    make the polls' own N - R, spaced over the plain window, look like N - R + 1 and keep
    background requests out for no reason.
    """
    return window + guard if limit >= requests else window


# How long past its expected wake-up a waiting action's claim on the next free slot lasts: long
# enough for a busy process to come back for it, short enough that a dead one frees it soon.
_CLAIM_SLACK = 0.25


def _sleep_for_slot(wait: float) -> None:
    time.sleep(wait + _WAKE_SLACK + random.uniform(0, _WAKE_JITTER))


# KEYS[1] grant log (sorted set, score = grant time in µs), KEYS[2] block (until, µs),
# KEYS[3] the polls' own grant log (same grants, polls only), KEYS[4] waiting actions' claims
# (sorted set, score = claim expiry in µs).
# ARGV[1] limit on all grants, ARGV[2] limit on poll grants (0 = not a poll), ARGV[3] window
# in µs, ARGV[4] a unique member (the same for every try of one acquire), ARGV[5] 1 for an
# action, ARGV[6] how long the caller would wait in µs, ARGV[7] claim slack in µs, ARGV[8] the
# guard in µs (the log keeps window + guard), ARGV[9] how long this lane counts all grants, µs.
# Returns {1, now} granted, {0, wait_µs} no slot yet, {-1, until} blocked.
_ACQUIRE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return {-1, blocked} end
local limit = tonumber(ARGV[1])
local poll_limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local action = ARGV[5] == '1'
local keep = window + tonumber(ARGV[8])
local span = tonumber(ARGV[9])
local ttl = math.ceil(keep / 1000) + 1000
-- keep grants exactly one window (plus guard) old: they still count (strict)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', now - keep))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('(%d', now - window))
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('(%d', now))
if not action then
  -- a slot an action is waiting for is the action's
  limit = math.max(1, limit - redis.call('ZCARD', KEYS[4]))
end
-- when the log holds count >= cap grants, the one at index count - cap is the last that must
-- leave for the count to drop below cap
local function wait_for(log, cap, length)
  local since = string.format('%d', now - length)
  local count = redis.call('ZCOUNT', log, since, '+inf')
  if count < cap then return 0 end
  local grant = redis.call(
    'ZRANGEBYSCORE', log, since, '+inf', 'WITHSCORES', 'LIMIT', count - cap, 1)
  return tonumber(grant[2]) + length - now + 1
end
local wait = wait_for(KEYS[1], limit, span)
if poll_limit > 0 then wait = math.max(wait, wait_for(KEYS[3], poll_limit, window)) end
if wait > 0 then
  if action and wait <= tonumber(ARGV[6]) then
    redis.call('ZADD', KEYS[4], string.format('%d', now + wait + tonumber(ARGV[7])), ARGV[4])
    redis.call('PEXPIRE', KEYS[4], ttl)
  end
  return {0, wait}
end
if action then redis.call('ZREM', KEYS[4], ARGV[4]) end
local stamp = string.format('%d', now)
redis.call('ZADD', KEYS[1], stamp, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl)
if poll_limit > 0 then
  redis.call('ZADD', KEYS[3], stamp, ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return {1, now}
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

# KEYS[1] grant log, KEYS[2] the polls' own log. ARGV[1] window in µs. Returns {all, polls,
# actions}; an action's member in the log starts with "action:" (RedisBudget.acquire).
_USAGE_LUA = """
local t = redis.call('TIME')
local since = string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2]) - tonumber(ARGV[1]))
local grants = redis.call('ZRANGEBYSCORE', KEYS[1], since, '+inf')
local actions = 0
for _, member in ipairs(grants) do
  if string.sub(member, 1, 7) == 'action:' then actions = actions + 1 end
end
return {#grants, redis.call('ZCOUNT', KEYS[2], since, '+inf'), actions}
"""

_MICRO = 1_000_000


class RedisBudget:
    """The budget shared through Redis by every process and host using the same ``key``.

    Keys: ``{key}:log`` (every grant of the last window), ``{key}:polls`` (the polls' own grants),
    ``{key}:waiting`` (waiting actions' claims) and ``{key}:blocked`` (block end); all expire on
    their own, so an idle installation leaves nothing behind.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        key: str,
        requests: int = 18,
        window: float = 5.0,
        reserve: int = 1,
        block_seconds: float = 1800.0,
        guard: float = 0.05,
    ) -> None:
        _check_limits(requests, window, reserve, block_seconds, guard)
        self.redis = redis_client
        self.key = key
        self.requests = requests
        self.window = window
        self.reserve = reserve
        self.block_seconds = block_seconds
        self.guard = guard
        self.log_key = f"{key}:log"
        self.poll_log_key = f"{key}:polls"
        self.claims_key = f"{key}:waiting"
        self.block_key = f"{key}:blocked"
        self._acquire = redis_client.register_script(_ACQUIRE_LUA)
        self._block = redis_client.register_script(_BLOCK_LUA)
        self._usage = redis_client.register_script(_USAGE_LUA)

    def acquire(self, *, priority: str = "poll", max_wait: float = 0.0) -> float:
        _check_priority(priority)
        limit, poll_limit = _limits(priority, self.requests, self.reserve)
        window_us = int(self.window * _MICRO)
        deadline = time.monotonic() + max(0.0, max_wait)
        member = f"{priority}:{uuid.uuid4().hex}"  # the lane, for usage()
        while True:
            status, value = self._run(
                self._acquire,
                keys=[self.log_key, self.block_key, self.poll_log_key, self.claims_key],
                args=[
                    limit,
                    poll_limit or 0,
                    window_us,
                    member,
                    1 if priority == "action" else 0,
                    int(max(0.0, deadline - time.monotonic()) * _MICRO),
                    int(_CLAIM_SLACK * _MICRO),
                    int(self.guard * _MICRO),
                    int(_total_span(limit, self.requests, self.window, self.guard) * _MICRO),
                ],
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
        return self.usage().total

    def usage(self) -> Usage:
        total, polls, actions = self._run(
            self._usage,
            keys=[self.log_key, self.poll_log_key],
            args=[int(self.window * _MICRO)],
        )
        return Usage(int(total), int(polls), int(actions))

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
        reserve: int = 1,
        block_seconds: float = 1800.0,
        guard: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_limits(requests, window, reserve, block_seconds, guard)
        self.requests = requests
        self.window = window
        self.reserve = reserve
        self.block_seconds = block_seconds
        self.guard = guard
        # Grant times and waits are on this clock (a fake one lets tests step time exactly).
        self._clock = clock
        self._lock = threading.Lock()
        self._grants: deque[float] = deque()  # grant times, oldest first
        self._poll_grants: deque[float] = deque()  # the polls' own grant times
        self._action_grants: deque[float] = deque()  # the actions' own grant times
        self._claims: dict[object, float] = {}  # waiting actions: claim -> expiry (clock)
        self._blocked_until: float | None = None  # Unix time

    def acquire(self, *, priority: str = "poll", max_wait: float = 0.0) -> float:
        _check_priority(priority)
        limit, poll_limit = _limits(priority, self.requests, self.reserve)
        action = priority == "action"
        deadline = self._clock() + max(0.0, max_wait)
        claim = object()
        while True:
            with self._lock:
                until = self._current_block()
                if until is not None:
                    raise Blocked(until=until)
                now = self._clock()
                self._forget_before(now)
                self._claims = {c: ends for c, ends in self._claims.items() if ends >= now}
                # A slot an action is waiting for is the action's.
                cap = limit if action else max(1, limit - len(self._claims))
                span = _total_span(limit, self.requests, self.window, self.guard)
                wait = self._frees(self._grants, cap, now, span)
                if poll_limit is not None:
                    wait = max(wait, self._frees(self._poll_grants, poll_limit, now, self.window))
                if wait <= 0:
                    self._claims.pop(claim, None)
                    self._grants.append(now)
                    if poll_limit is not None:
                        self._poll_grants.append(now)
                    if action:
                        self._action_grants.append(now)
                    return now
                if action and wait <= deadline - now:
                    self._claims[claim] = now + wait + _CLAIM_SLACK
            if wait > deadline - self._clock():
                with self._lock:
                    self._claims.pop(claim, None)
                raise BudgetExhausted(wait)
            _sleep_for_slot(wait)

    @staticmethod
    def _frees(grants: deque[float], cap: int, now: float, span: float) -> float:
        """Seconds until fewer than ``cap`` of ``grants`` are in the last ``span`` (0: already)."""
        inside = [granted for granted in grants if granted >= now - span]
        if len(inside) < cap:
            return 0.0
        # Grants exactly one span old still count, so the slot frees just after that.
        return max(inside[len(inside) - cap] + span - now, 0.0) + 1e-6

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
        return self.usage().total

    def usage(self) -> Usage:
        with self._lock:
            now = self._clock()
            self._forget_before(now)
            return Usage(
                *(
                    sum(1 for granted in grants if granted >= now - self.window)
                    for grants in (self._grants, self._poll_grants, self._action_grants)
                )
            )

    def _current_block(self) -> float | None:
        if self._blocked_until is not None and self._blocked_until <= time.time():
            self._blocked_until = None
        return self._blocked_until

    def _forget_before(self, now: float) -> None:
        # Grants exactly one window (span) old still count: strictly never more than N.
        for grants, span in (
            (self._grants, self.window + self.guard),
            (self._poll_grants, self.window),
            (self._action_grants, self.window),
        ):
            while grants and grants[0] < now - span:
                grants.popleft()

"""The request budget every PBX request must ask first.

The PBX allows 20 requests per 5 seconds per source IP (``PBX_LIMIT``) and answers one more
with a 403 for 30 minutes, to every process behind that IP. So the budget is strict: never
more than ``requests`` (N) slots held at once (18 by default, headroom under the PBX's 20), a
budget above the PBX's limit (more requests, or a shorter window) is refused when it is built,
and after a 403 the budget refuses everything until the block ends.

Holds. The PBX counts a request when it *arrives*; the budget only sees its grant and, later,
its release. So a granted slot is *held*: from its grant until one window (W) after its
response ended (``release``), or, when its holder never says so (it died), until its hold
bound ``grant + hold + W``, ``hold`` being the holder's own worst case for the whole exchange.
At most N slots are held at any instant. That is enough: take N + 1 arrivals inside one PBX
window, and the last of their grants. Every one of them arrived after its grant and before its
response ended, so each slot is held at least from its arrival until W after it; at the last
grant all the other N were already granted and still held, so that grant was refused. A
process descheduled between grant and send, a TCP retransmission, a slow answer: each moves
an arrival only within its hold, so no guard time is added anywhere. The client keeps its side
(``pbxapi.client``): it sends within a second of the grant or not at all, ends every exchange
within its hold, and releases the slot when the response has ended or the request failed.

Three lanes share the N slots; ``reserve`` (R) slots are kept for agent actions:

- ``"action"`` (an agent's pause/unpause/..., and its follow-up refresh): granted while fewer
  than N slots are held in all. Actions may use every slot.
- ``"poll"`` (the poller's round-robin): granted while the polls' *own* held slots are fewer
  than N - R, and fewer than N are held in all. Counting the polls' own slots (not the total
  against N - R) means actions that stay within the reserve never delay a poll: the reserve
  protects actions from polls *and* polls from actions.
- ``"background"`` (slow, deferrable fetches: the queue list, extension names, today's call
  records): granted while fewer than N - (R - 1) slots are held in all. They may borrow the
  reserve when actions do not need it (never a slot of the polls' share), but leave the last
  slot of a larger reserve for an action; with a one-slot reserve (the default) they may take
  that slot too, and an action that finds it taken claims the next slot that frees (below).
  Callers ask with ``max_wait=0`` and simply try again later when refused.

So polls <= N - R and everything <= N at any instant, whatever the mix; with R >= 2 an action
finds a slot at once even while polls and background requests hold everything they may.

``usage()`` tells the poller what each lane holds and the *typical hold* (a moving average of
release - grant): a slot is held about W + typical hold, so requests spaced at
(W + typical hold) / share keep ``share`` slots held.

A refused request learns how long to wait: until enough held slots are expected to end for its
rule to hold. A released slot ends at its end time; one still in flight is expected to end a
typical hold after its grant (or now, if it is already past that) plus W, and never after its
bound. The estimate can be early, never unsafe: the decision is taken on the slots' real ends,
and ``acquire(max_wait=...)`` sleeps and asks again.

An action that has to wait (more actions than the reserve holds) claims the next slot that
frees: while its claim lasts (its expected wait plus ``_CLAIM_SLACK``) polls and background
requests count it as held. Polls keep their grid in step with the slots, so without the claim
the poller would re-take every freed slot the instant it frees and an agent could wait for
seconds.

``RedisBudget`` shares all of that between every process and host that uses the same Redis key
(one atomic Lua script per decision, on Redis's own clock, so hosts with skewed clocks agree).
When Redis loses its memory (a restart without persistence, a flush, a fail-over to a replica
that had not caught up) the log is empty while the PBX still counts what was sent just before;
a grant then would send a burst into a full PBX window. So the budget keeps a marker key that
never expires, written by the first decision on the key; a decision that finds it missing
*starts full*: it writes the marker and grants nothing, to every process, until the longest a
slot granted before the loss could still be held has passed (W + ``max_hold``). A key never
used before looks the same and starts the same way, unless its creator calls
``declare_unused()``. A 403's block survives the loss through an optional ``block_store``.

``LocalBudget`` does the same inside one process, for use without Redis (no memory to lose).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

import redis

from pbxapi.errors import Blocked, BudgetExhausted, BudgetUnavailable, InvalidArgument

logger = logging.getLogger(__name__)

Priority = Literal["poll", "action", "background"]
PRIORITIES: tuple[str, ...] = ("poll", "action", "background")

# The PBX's documented rate limit: requests per window (seconds) per source IP. A simulator may
# run with another one; budgets and the environment readers take it as ``pbx_limit``.
PBX_LIMIT: tuple[int, float] = (20, 5.0)

# The longest a holder may keep a slot by default: the client's worst case with its default
# timeouts (send within 1 s + connect 3 s + answer 10 s, ``pbxapi.client.exchange_hold``). It
# sets how long a RedisBudget stays cold after losing its memory (W + max_hold).
DEFAULT_MAX_HOLD = 14.0

# The weight of each new release - grant sample in the typical hold (a moving average).
HOLD_SMOOTHING = 0.1


class Grant(NamedTuple):
    """One granted slot; hand it back to ``release`` when its response has ended."""

    at: float  # grant time on the budget's clock (seconds)
    id: str  # the slot's identity in the budget ("<lane>:<hex>")
    priority: str
    hold: float  # unreleased, the slot counts until at + hold + window
    monotonic: float  # this process's time.monotonic() no later than the grant


class Usage(NamedTuple):
    """Slots held now: in all, the polls' own and the actions' (the rest is background), and
    the typical hold in seconds (0 before the first release)."""

    total: int
    polls: int
    actions: int
    hold: float = 0.0


class BlockStore(Protocol):
    """Somewhere a 403's block outlives the budget's memory (a file, a database row)."""

    def load(self) -> float | None:
        """The Unix time until which the PBX blocks us, or None if none was saved."""
        ...

    def save(self, until: float) -> None:
        """Remember that the PBX blocks us until ``until`` (Unix time)."""
        ...


class Budget(Protocol):
    requests: int
    window: float
    reserve: int
    block_seconds: float
    max_hold: float

    def acquire(
        self, *, priority: str = "poll", max_wait: float = 0.0, hold: float | None = None
    ) -> Grant:
        """Take one request slot, waiting up to ``max_wait`` seconds for one.

        ``hold`` is the longest the caller may keep the slot before releasing it (default and
        at most ``max_hold``). Raises ``Blocked`` while the PBX has us blocked and
        ``BudgetExhausted`` when no slot frees within ``max_wait``.
        """
        ...

    def release(self, grant: Grant) -> None:
        """The grant's response has ended (or its request failed): from now on the slot
        counts for one more window only."""
        ...

    def report_blocked(self, seconds: float | None = None) -> float:
        """After a 403: refuse everything for ``seconds`` (default: block time); returns until."""
        ...

    def blocked_until(self) -> float | None:
        """Unix timestamp until which we are blocked, or None."""
        ...

    def used(self) -> int:
        """Slots held now."""
        ...

    def usage(self) -> Usage:
        """Slots held now: in all, on the poll lane, on the action lane; the typical hold."""
        ...


# A slot frees the instant its end passes; wake a hair later, plus a little jitter so processes
# that wait for the same slot do not all wake at once.
_WAKE_SLACK = 0.002
_WAKE_JITTER = 0.005

# How long past its expected wake-up a waiting action's claim on the next free slot lasts: long
# enough for a busy process to come back for it, short enough that a dead one frees it soon.
_CLAIM_SLACK = 0.25


def _check_limits(
    *,
    requests: int,
    window: float,
    reserve: int,
    block_seconds: float,
    max_hold: float,
    pbx_limit: tuple[int, float],
) -> None:
    limit_requests, limit_window = pbx_limit
    if limit_requests < 1 or limit_window <= 0:
        raise ValueError("the PBX's limit must be at least one request per positive window")
    if requests < 1:
        raise ValueError("the budget needs at least one request per window")
    if window <= 0:
        raise ValueError("the budget window must be positive")
    if requests > limit_requests or window < limit_window:
        raise ValueError(
            f"a budget of {requests} requests per {window:g} s is above the PBX's limit of "
            f"{limit_requests} per {limit_window:g} s"
        )
    if not 0 <= reserve < requests:
        raise ValueError("the action reserve must be at least 0 and below the request limit")
    if block_seconds <= 0:
        raise ValueError("the block time must be positive")
    if max_hold < 0:
        raise ValueError("the longest hold must not be negative")


def _check_priority(priority: str) -> None:
    if priority not in PRIORITIES:
        raise InvalidArgument(
            f"Unknown budget priority {priority!r}; use one of " + ", ".join(map(repr, PRIORITIES))
        )


def _check_hold(hold: float | None, max_hold: float) -> float:
    if hold is None:
        return max_hold
    if not 0 <= hold <= max_hold:
        # Longer than max_hold, a slot granted just before a memory loss could outlast the cold
        # start that protects it.
        raise InvalidArgument(
            f"A hold of {hold:g} s is outside 0 to the budget's longest hold ({max_hold:g} s)"
        )
    return hold


def _limits(priority: str, requests: int, reserve: int) -> tuple[int, int | None]:
    """(limit on all held slots, limit on the polls' own held slots or None) for this lane."""
    if priority == "poll":
        return requests, requests - reserve
    if priority == "background":
        return requests - max(0, reserve - 1), None
    return requests, None


def _sleep_for_slot(wait: float) -> None:
    time.sleep(wait + _WAKE_SLACK + random.uniform(0, _WAKE_JITTER))


def _store_load(store: BlockStore) -> float | None:
    """The store's block if it still lasts; a broken store is logged and says nothing."""
    try:
        until = store.load()
    except Exception:
        logger.exception("Could not read the PBX block from its store")
        return None
    return until if until is not None and until > time.time() else None


def _store_save(store: BlockStore, until: float) -> bool:
    try:
        store.save(until)
    except Exception:
        logger.exception("Could not save the PBX block to its store")
        return False
    return True


class FileBlockStore:
    """A block store in one small file (the Unix time as text), replaced atomically; it never
    shortens a longer block it already holds."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> float | None:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        try:
            return float(text)
        except ValueError:
            logger.warning("Ignoring the unreadable PBX block file %s", self.path)
            return None

    def save(self, until: float) -> None:
        current = self.load()
        if current is not None and current >= until:
            return
        handle, temporary = tempfile.mkstemp(prefix=".block-", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="ascii") as out:
                out.write(f"{until:.6f}\n")
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


# KEYS[1] slot log (sorted set, score = the slot's end in µs: its bound while in flight, its
# release + W after), KEYS[2] block (until, µs), KEYS[3] the polls' own slots (same scores),
# KEYS[4] waiting actions' claims (score = claim expiry, µs), KEYS[5] slots in flight (score =
# grant time, µs), KEYS[6] typical hold (µs), KEYS[7] memory marker (never expires), KEYS[8]
# cold start (until, µs).
# ARGV[1] limit on all held slots, ARGV[2] limit on the polls' own (0 = not a poll), ARGV[3]
# window in µs, ARGV[4] a unique member (the same for every try of one acquire), ARGV[5] 1 for
# an action, ARGV[6] how long the caller would wait in µs, ARGV[7] claim slack in µs, ARGV[8]
# this grant's hold in µs, ARGV[9] the longest hold in µs, ARGV[10] the logs' time to live, ms.
# Returns {1, now} granted, {0, wait_µs} no slot yet, {-1, until} blocked, {-2, wait_µs} cold.
_ACQUIRE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[3])
local max_hold = tonumber(ARGV[9])
if redis.call('EXISTS', KEYS[7]) == 0 then
  -- Memory lost (or a key never used): start full, for every process at once.
  redis.call('SET', KEYS[7], string.format('%d', now))
  local cold_ms = math.ceil((window + max_hold) / 1000)
  redis.call('SET', KEYS[8], string.format('%d', now + cold_ms * 1000), 'PX', cold_ms)
end
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return {-1, blocked} end
local cold = tonumber(redis.call('GET', KEYS[8]) or '0')
if cold > now then return {-2, cold - now + 1} end
local limit = tonumber(ARGV[1])
local poll_limit = tonumber(ARGV[2])
local action = ARGV[5] == '1'
local ttl = tonumber(ARGV[10])
-- a slot whose end is exactly now still counts (strict)
local past = string.format('(%d', now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', past)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', past)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', past)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', string.format('(%d', now - window - max_hold))
if not action then
  -- a slot an action is waiting for is the action's
  limit = math.max(1, limit - redis.call('ZCARD', KEYS[4]))
end
local typical = tonumber(redis.call('GET', KEYS[6]) or '0')
-- How long until fewer than cap of the log's slots are held: when the held slot at index
-- count - cap (by expected end) ends. A slot in flight is expected to end a typical hold after
-- its grant (not before now) plus the window, never after its bound.
local function wait_for(log, cap)
  local held = redis.call('ZRANGEBYSCORE', log, string.format('%d', now), '+inf', 'WITHSCORES')
  local count = #held / 2
  if count < cap then return 0 end
  local ends = {}
  for i = 1, #held, 2 do
    local ends_at = tonumber(held[i + 1])
    local granted = redis.call('ZSCORE', KEYS[5], held[i])
    if granted then
      ends_at = math.min(ends_at, math.max(now, tonumber(granted) + typical) + window)
    end
    ends[#ends + 1] = ends_at
  end
  table.sort(ends)
  return math.floor(ends[count - cap + 1] - now) + 1
end
local wait = wait_for(KEYS[1], limit)
if poll_limit > 0 then wait = math.max(wait, wait_for(KEYS[3], poll_limit)) end
if wait > 0 then
  if action and wait <= tonumber(ARGV[6]) then
    redis.call('ZADD', KEYS[4], string.format('%d', now + wait + tonumber(ARGV[7])), ARGV[4])
    redis.call('PEXPIRE', KEYS[4], ttl)
  end
  return {0, wait}
end
if action then redis.call('ZREM', KEYS[4], ARGV[4]) end
local bound = string.format('%d', now + tonumber(ARGV[8]) + window)
redis.call('ZADD', KEYS[1], bound, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[5], string.format('%d', now), ARGV[4])
redis.call('PEXPIRE', KEYS[5], ttl)
if poll_limit > 0 then
  redis.call('ZADD', KEYS[3], bound, ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return {1, now}
"""

# KEYS[1] slot log, KEYS[2] the polls' own, KEYS[3] slots in flight, KEYS[4] typical hold.
# ARGV[1] the grant's member, ARGV[2] its grant time in µs, ARGV[3] window in µs, ARGV[4] the
# logs' time to live in ms, ARGV[5] the smoothing weight of a new hold sample.
# The slot now ends one window from now (XX: a slot the log no longer holds stays gone).
_RELEASE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ends = string.format('%d', now + tonumber(ARGV[3]))
redis.call('ZADD', KEYS[1], 'XX', ends, ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', ends, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if redis.call('ZREM', KEYS[3], ARGV[1]) == 1 then
  local sample = now - tonumber(ARGV[2])
  local typical = tonumber(redis.call('GET', KEYS[4]) or '-1')
  if typical < 0 then
    typical = sample
  else
    typical = typical + (sample - typical) * tonumber(ARGV[5])
  end
  redis.call('SET', KEYS[4], string.format('%d', math.floor(typical)), 'PX', 86400000)
end
return 1
"""

# KEYS[1] block key. ARGV[1] block length in µs, ARGV[2] an absolute end in µs (0 = none).
# Never shortens a longer block. Returns until (µs), 0 when nothing was blocked.
_BLOCK_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ends = math.max(now + tonumber(ARGV[1]), tonumber(ARGV[2]))
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > ends then ends = current end
if ends <= now then return 0 end
local ttl = math.max(1, math.ceil((ends - now) / 1000))
redis.call('SET', KEYS[1], string.format('%d', ends), 'PX', ttl)
return ends
"""

# KEYS[1] block key, KEYS[2] memory marker. Returns {until µs or 0, 1 if the marker exists}.
_BLOCKED_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local blocked = tonumber(redis.call('GET', KEYS[1]) or '0')
if blocked <= now then blocked = 0 end
return {blocked, redis.call('EXISTS', KEYS[2])}
"""

# KEYS[1] slot log, KEYS[2] the polls' own, KEYS[3] typical hold. Returns {all, polls, actions,
# typical hold µs}; an action's member in the log starts with "action:" (RedisBudget.acquire).
_USAGE_LUA = """
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2]))
local held = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local actions = 0
for _, member in ipairs(held) do
  if string.sub(member, 1, 7) == 'action:' then actions = actions + 1 end
end
local typical = tonumber(redis.call('GET', KEYS[3]) or '0')
return {#held, redis.call('ZCOUNT', KEYS[2], now, '+inf'), actions, typical}
"""

_MICRO = 1_000_000


class RedisBudget:
    """The budget shared through Redis by every process and host using the same ``key``.

    Every process sharing a key must use the same limits (requests, window, reserve,
    ``max_hold``). Keys: ``{key}:log`` (held slots, by end), ``{key}:polls`` (the polls' own),
    ``{key}:flight`` (slots not yet released, by grant time), ``{key}:waiting`` (waiting
    actions' claims), ``{key}:hold`` (typical hold), ``{key}:blocked`` (block end) and
    ``{key}:cold`` (cold start end) all expire on their own; ``{key}:memory``, the marker that
    tells a memory loss, never does (a maxmemory policy must not evict it: an ``allkeys-*``
    policy would cost a needless cold start, a ``volatile-*`` one never touches it).
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
        max_hold: float = DEFAULT_MAX_HOLD,
        pbx_limit: tuple[int, float] = PBX_LIMIT,
        block_store: BlockStore | None = None,
    ) -> None:
        _check_limits(
            requests=requests,
            window=window,
            reserve=reserve,
            block_seconds=block_seconds,
            max_hold=max_hold,
            pbx_limit=pbx_limit,
        )
        self.redis = redis_client
        self.key = key
        self.requests = requests
        self.window = window
        self.reserve = reserve
        self.block_seconds = block_seconds
        self.max_hold = max_hold
        self.pbx_limit = pbx_limit
        self.block_store = block_store
        self.log_key = f"{key}:log"
        self.poll_log_key = f"{key}:polls"
        self.flight_key = f"{key}:flight"
        self.claims_key = f"{key}:waiting"
        self.hold_key = f"{key}:hold"
        self.block_key = f"{key}:blocked"
        self.memory_key = f"{key}:memory"
        self.cold_key = f"{key}:cold"
        # Every stored end lies within window + max_hold of the moment it was written.
        self._ttl_ms = math.ceil((window + max_hold) * 1000) + 1000
        self._restored: float | None = None  # the stored block last put back after a loss
        self._acquire = redis_client.register_script(_ACQUIRE_LUA)
        self._release = redis_client.register_script(_RELEASE_LUA)
        self._block = redis_client.register_script(_BLOCK_LUA)
        self._blocked = redis_client.register_script(_BLOCKED_LUA)
        self._usage = redis_client.register_script(_USAGE_LUA)

    def declare_unused(self) -> bool:
        """Skip the cold start of a key that nothing has ever used: write its memory marker.

        Only for a caller that *knows* no request was ever granted under this key (a test's
        unique key, a brand-new installation's first start). Called on a key that processes
        share after Redis lost its memory, it would let the next requests go out while the PBX
        still counts the ones sent just before. Returns False if the marker was there already.
        """
        try:
            return bool(self.redis.set(self.memory_key, "declared unused", nx=True))
        except redis.RedisError as exc:
            raise BudgetUnavailable(_redis_failure(exc)) from exc

    def acquire(
        self, *, priority: str = "poll", max_wait: float = 0.0, hold: float | None = None
    ) -> Grant:
        _check_priority(priority)
        hold = _check_hold(hold, self.max_hold)
        limit, poll_limit = _limits(priority, self.requests, self.reserve)
        deadline = time.monotonic() + max(0.0, max_wait)
        member = f"{priority}:{uuid.uuid4().hex}"  # the lane, for usage()
        while True:
            asked = time.monotonic()
            status, value = self._run(
                self._acquire,
                keys=[
                    self.log_key,
                    self.block_key,
                    self.poll_log_key,
                    self.claims_key,
                    self.flight_key,
                    self.hold_key,
                    self.memory_key,
                    self.cold_key,
                ],
                args=[
                    limit,
                    poll_limit or 0,
                    int(self.window * _MICRO),
                    member,
                    1 if priority == "action" else 0,
                    int(max(0.0, deadline - time.monotonic()) * _MICRO),
                    int(_CLAIM_SLACK * _MICRO),
                    int(hold * _MICRO),
                    int(self.max_hold * _MICRO),
                    self._ttl_ms,
                ],
            )
            if status == 1:
                granted = int(value) / _MICRO
                return Grant(at=granted, id=member, priority=priority, hold=hold, monotonic=asked)
            if status == -1:
                raise Blocked(until=int(value) / _MICRO)
            wait = int(value) / _MICRO
            cold = status == -2
            if cold and self._restore_block():
                continue  # the next try meets the restored block
            if wait > deadline - time.monotonic():
                if cold:
                    raise BudgetExhausted(
                        wait,
                        "The shared PBX request budget is starting cold (its Redis lost its "
                        f"memory, or the key is new): next slot in {wait:.1f} s",
                    )
                raise BudgetExhausted(wait)
            _sleep_for_slot(wait)

    def release(self, grant: Grant) -> None:
        self._run(
            self._release,
            keys=[self.log_key, self.poll_log_key, self.flight_key, self.hold_key],
            args=[
                grant.id,
                round(grant.at * _MICRO),
                int(self.window * _MICRO),
                self._ttl_ms,
                HOLD_SMOOTHING,
            ],
        )

    def report_blocked(self, seconds: float | None = None) -> float:
        """Block every process sharing the key; saved to the block store too. With Redis down
        the store alone keeps it (without a store: ``BudgetUnavailable``)."""
        length = self.block_seconds if seconds is None else seconds
        try:
            until = int(self._block(keys=[self.block_key], args=[int(length * _MICRO), 0]))
        except redis.RedisError as exc:
            if self.block_store is None:
                raise BudgetUnavailable(_redis_failure(exc)) from exc
            ends = max(time.time() + length, _store_load(self.block_store) or 0.0)
            if not _store_save(self.block_store, ends):
                raise BudgetUnavailable(_redis_failure(exc)) from exc
            logger.warning("The shared budget is unreachable; the PBX block is in its store only")
            return ends
        ends = until / _MICRO
        if self.block_store is not None:
            _store_save(self.block_store, ends)
        return ends

    def blocked_until(self) -> float | None:
        """The block in Redis; the block store's when Redis is unreachable or has lost its
        memory and no decision has noticed yet."""
        try:
            blocked, known = self._blocked(keys=[self.block_key, self.memory_key], args=[])
        except redis.RedisError as exc:
            if self.block_store is None:
                raise BudgetUnavailable(_redis_failure(exc)) from exc
            return _store_load(self.block_store)
        if int(blocked):
            return int(blocked) / _MICRO
        if not int(known) and self.block_store is not None:
            return _store_load(self.block_store)
        return None

    def used(self) -> int:
        return self.usage().total

    def usage(self) -> Usage:
        total, polls, actions, typical = self._run(
            self._usage, keys=[self.log_key, self.poll_log_key, self.hold_key], args=[]
        )
        return Usage(int(total), int(polls), int(actions), int(typical) / _MICRO)

    @property
    def guard(self) -> float:
        """The typical hold (``usage().hold``): how much longer than the window a slot is held
        on average, the slack to add to the window when spacing requests evenly."""
        return self.usage().hold

    def _restore_block(self) -> bool:
        """During a cold start: put the block store's block back into Redis (once per block).
        True if it did, so that the next decision refuses on it."""
        if self.block_store is None:
            return False
        until = _store_load(self.block_store)
        if until is None or until == self._restored:
            return False
        self._run(self._block, keys=[self.block_key], args=[0, int(until * _MICRO)])
        self._restored = until
        logger.warning("The shared budget lost its memory; restored the PBX block from its store")
        return True

    def _run(self, script, *, keys: list[str], args: list[object]):  # type: ignore[no-untyped-def]
        try:
            return script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise BudgetUnavailable(_redis_failure(exc)) from exc


def _redis_failure(exc: redis.RedisError) -> str:
    # The exception names host and port at most, never the URL's password.
    return f"The shared PBX request budget (Redis) is unavailable: {exc.__class__.__name__}"


@dataclass
class _Slot:
    priority: str
    granted: float  # on the budget's clock
    ends: float  # the bound while in flight, release + window after
    in_flight: bool = True


def _wait_for(ends: list[float], cap: int, now: float) -> float:
    """Seconds until fewer than ``cap`` slots ending at ``ends`` are held (0: already)."""
    if len(ends) < cap:
        return 0.0
    ordered = sorted(ends)
    # A slot whose end is exactly now still counts, so it frees just after.
    return max(ordered[len(ordered) - cap] - now, 0.0) + 1e-6


class LocalBudget:
    """The same strict budget inside one process (thread-safe), for use without Redis."""

    def __init__(
        self,
        *,
        requests: int = 18,
        window: float = 5.0,
        reserve: int = 1,
        block_seconds: float = 1800.0,
        max_hold: float = DEFAULT_MAX_HOLD,
        pbx_limit: tuple[int, float] = PBX_LIMIT,
        block_store: BlockStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_limits(
            requests=requests,
            window=window,
            reserve=reserve,
            block_seconds=block_seconds,
            max_hold=max_hold,
            pbx_limit=pbx_limit,
        )
        self.requests = requests
        self.window = window
        self.reserve = reserve
        self.block_seconds = block_seconds
        self.max_hold = max_hold
        self.pbx_limit = pbx_limit
        self.block_store = block_store
        # Grant times and waits are on this clock (a fake one lets tests step time exactly).
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}  # held slots by id
        self._claims: dict[object, float] = {}  # waiting actions: claim -> expiry (clock)
        self._typical: float | None = None  # typical hold, seconds
        # Unix time; a block saved by an earlier process outlives it.
        self._blocked_until = None if block_store is None else _store_load(block_store)

    def acquire(
        self, *, priority: str = "poll", max_wait: float = 0.0, hold: float | None = None
    ) -> Grant:
        _check_priority(priority)
        hold = _check_hold(hold, self.max_hold)
        limit, poll_limit = _limits(priority, self.requests, self.reserve)
        action = priority == "action"
        deadline = self._clock() + max(0.0, max_wait)
        claim = object()
        while True:
            asked = time.monotonic()
            with self._lock:
                until = self._current_block()
                if until is not None:
                    self._claims.pop(claim, None)
                    raise Blocked(until=until)
                now = self._clock()
                self._forget_before(now)
                # A slot an action is waiting for is the action's.
                cap = limit if action else max(1, limit - len(self._claims))
                wait = _wait_for(self._expected_ends(now), cap, now)
                if poll_limit is not None:
                    polls = self._expected_ends(now, priority="poll")
                    wait = max(wait, _wait_for(polls, poll_limit, now))
                if wait <= 0:
                    self._claims.pop(claim, None)
                    slot_id = f"{priority}:{uuid.uuid4().hex}"
                    self._slots[slot_id] = _Slot(priority, now, now + hold + self.window)
                    return Grant(at=now, id=slot_id, priority=priority, hold=hold, monotonic=asked)
                if action and wait <= deadline - now:
                    self._claims[claim] = now + wait + _CLAIM_SLACK
            if wait > deadline - self._clock():
                with self._lock:
                    self._claims.pop(claim, None)
                raise BudgetExhausted(wait)
            _sleep_for_slot(wait)

    def release(self, grant: Grant) -> None:
        with self._lock:
            slot = self._slots.get(grant.id)
            if slot is None:
                return  # already past its bound: it no longer counts
            now = self._clock()
            slot.ends = now + self.window
            if slot.in_flight:
                slot.in_flight = False
                sample = now - slot.granted
                if self._typical is None:
                    self._typical = sample
                else:
                    self._typical += (sample - self._typical) * HOLD_SMOOTHING

    def report_blocked(self, seconds: float | None = None) -> float:
        length = self.block_seconds if seconds is None else seconds
        with self._lock:
            until = time.time() + length
            if self._blocked_until is not None and self._blocked_until > until:
                until = self._blocked_until
            self._blocked_until = until
        if self.block_store is not None:
            _store_save(self.block_store, until)
        return until

    def blocked_until(self) -> float | None:
        with self._lock:
            return self._current_block()

    def used(self) -> int:
        return self.usage().total

    def usage(self) -> Usage:
        with self._lock:
            self._forget_before(self._clock())
            slots = list(self._slots.values())
            return Usage(
                total=len(slots),
                polls=sum(1 for slot in slots if slot.priority == "poll"),
                actions=sum(1 for slot in slots if slot.priority == "action"),
                hold=self._typical or 0.0,
            )

    @property
    def guard(self) -> float:
        """The typical hold (``usage().hold``): how much longer than the window a slot is held
        on average, the slack to add to the window when spacing requests evenly."""
        return self.usage().hold

    def _expected_ends(self, now: float, *, priority: str | None = None) -> list[float]:
        """When each held slot (of one lane, or all) is expected to end: a released one at its
        end, one in flight a typical hold after its grant (not before now) plus the window,
        never after its bound."""
        typical = self._typical or 0.0
        return [
            min(slot.ends, max(now, slot.granted + typical) + self.window)
            if slot.in_flight
            else slot.ends
            for slot in self._slots.values()
            if priority is None or slot.priority == priority
        ]

    def _current_block(self) -> float | None:
        if self._blocked_until is not None and self._blocked_until <= time.time():
            self._blocked_until = None
        return self._blocked_until

    def _forget_before(self, now: float) -> None:
        # A slot whose end is exactly now still counts: strictly never more than N.
        for slot_id in [slot_id for slot_id, slot in self._slots.items() if slot.ends < now]:
            del self._slots[slot_id]
        self._claims = {claim: ends for claim, ends in self._claims.items() if ends >= now}

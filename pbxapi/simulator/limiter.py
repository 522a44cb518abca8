"""The PBX's rate limit, as documented: N requests per sliding W-second window per client IP.

Request N+1 inside any window is answered 403, and so is everything from that IP until the
block time has passed. Requests made during a block are refused without extending it, and they
do not count towards the next window (the window starts empty when the block ends).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """Thread-safe per-IP sliding-window limiter with a block period."""

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        block_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.block_seconds = block_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def admit(self, ip: str) -> bool:
        """Count one request from `ip`; False means answer 403 (blocked now or by this one)."""
        now = self._clock()
        with self._lock:
            until = self._blocked_until.get(ip)
            if until is not None:
                if now < until:
                    return False
                del self._blocked_until[ip]
                self._recent.pop(ip, None)
            recent = self._recent.setdefault(ip, deque())
            while recent and recent[0] <= now - self.window:
                recent.popleft()
            if len(recent) >= self.limit:
                self._blocked_until[ip] = now + self.block_seconds
                recent.clear()
                return False
            recent.append(now)
            return True

    def block(self, ip: str, seconds: float) -> None:
        """Block `ip` for `seconds` from now, as if it had broken the limit."""
        with self._lock:
            self._blocked_until[ip] = self._clock() + seconds
            self._recent.pop(ip, None)

    def blocked_until(self, ip: str) -> float | None:
        """Monotonic time until which `ip` is blocked, or None."""
        with self._lock:
            until = self._blocked_until.get(ip)
            return until if until is not None and until > self._clock() else None

    def reset(self) -> None:
        """Forget every block and every counted request."""
        with self._lock:
            self._blocked_until.clear()
            self._recent.clear()

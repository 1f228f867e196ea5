"""Fixed-window rate limits per client, counted in the cache (in-process or Redis).

A window is `[k * window, (k + 1) * window)` seconds of wall time; each window has its own
counter that expires with it, so a client blocked now is served again when the next window
starts, however steadily it keeps asking.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cpsync.cache import CacheError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    remaining: int
    retry_after: int


class FixedWindowLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision: ...


class Counters(Protocol):
    """The slice of `cpsync.cache.Cache` the limiter counts in."""

    async def incr(self, key: str, ttl_seconds: float) -> int: ...


class CacheWindowLimiter:
    def __init__(self, cache: Counters, now: Callable[[], float] = time.time) -> None:
        self._cache = cache
        self._now = now

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        now = self._now()
        window = int(now // window_seconds)
        retry_after = max(1, math.ceil((window + 1) * window_seconds - now))
        try:
            count = await self._cache.incr(f"rate:{key}:{window}", window_seconds + 1)
        except CacheError as exc:
            # An unreachable counter store must not take the site down with it.
            log.warning("ratelimit.cache.unavailable error=%s", exc)
            return RateDecision(True, limit, 0)
        return RateDecision(count <= limit, max(0, limit - count), retry_after)

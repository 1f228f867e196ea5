"""How outbound calls are paced, per host: `HttpClient` asks a host's `Pacer` before each
attempt. By default a host gets a `MinIntervalPacer` (calls at least
`CPSYNC_HTTP_MIN_INTERVAL_SECONDS` apart, in this process); Codeforces gets a token bucket
(`throttle_from_url`) that every process shares when it lives in Redis.

Codeforces allows one call per two seconds per client, counted across all our workers,
so the bucket can live in Redis and be shared by every process. It is implemented as a
GCRA (the "virtual scheduling" form of a token bucket): the bucket's state is one
timestamp, the theoretical arrival time (TAT) of the next call. Each `acquire` reserves
the next free slot atomically and then sleeps until it, so waiting callers are served in
the order they asked and never poll.

A caller cancelled while sleeping still used its slot; that only makes us slower, never
faster than the rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from cpsync.redis_client import open_redis

Sleep = Callable[[float], Awaitable[None]]
MonotonicClock = Callable[[], float]
DEFAULT_KEY = "cpsync:throttle:codeforces"


@dataclass(frozen=True, slots=True)
class ThrottleRate:
    """`burst` calls may go at once, then one per `interval_seconds`."""

    interval_seconds: float = 2.0
    burst: int = 1

    def __post_init__(self) -> None:
        if self.interval_seconds <= 0 or self.burst < 1:
            raise ValueError("a throttle needs a positive interval and a burst of at least 1")

    @property
    def tolerance_seconds(self) -> float:
        return (self.burst - 1) * self.interval_seconds


class Pacer(Protocol):
    async def acquire(self) -> None:
        """Return when the caller may make one call to the host."""


class MinIntervalPacer:
    """Keeps calls to one host at least `interval` seconds apart (every host without a
    pacer of its own, in one process)."""

    def __init__(self, interval: float, sleep: Sleep) -> None:
        self._interval = interval
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._next_at = 0.0

    async def acquire(self) -> None:
        async with self._lock:
            delay = self._next_at - time.monotonic()
            if delay > 0:
                await self._sleep(delay)
            self._next_at = time.monotonic() + self._interval


def reserve_slot(tat: float, now: float, rate: ThrottleRate) -> tuple[float, float]:
    """(delay before the call may go, the new TAT): the GCRA step, shared by both kinds."""
    start = max(tat, now)
    delay = max(0.0, start - rate.tolerance_seconds - now)
    return delay, start + rate.interval_seconds


class InProcessThrottle:
    """For the embedded mode: one process, one event loop."""

    def __init__(
        self,
        rate: ThrottleRate | None = None,
        *,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._rate = rate or ThrottleRate()
        self._clock = clock
        self._sleep = sleep
        self._tat = float("-inf")

    async def acquire(self) -> None:
        # No await between reading and writing the TAT, so no lock is needed.
        delay, self._tat = reserve_slot(self._tat, self._clock(), self._rate)
        if delay > 0:
            await self._sleep(delay)


# Times in integer microseconds from the Redis server's clock, so processes on
# different machines agree. Lua numbers are doubles: exact up to 2^53 µs (~285 years),
# and `%d` keeps them from being written as "1.7e+15".
_RESERVE_SCRIPT = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local delay = tat - tolerance - now
if delay < 0 then delay = 0 end
local new_tat = tat + interval
local ttl_ms = math.floor((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', ttl_ms))
return delay
"""


class RedisThrottle:
    """Shared by every process using the same Redis and key."""

    def __init__(
        self,
        redis: Redis,
        rate: ThrottleRate | None = None,
        *,
        key: str = DEFAULT_KEY,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._redis = redis
        self._rate = rate or ThrottleRate()
        self._key = key
        self._sleep = sleep
        self._script = redis.register_script(_RESERVE_SCRIPT)
        self._owns_client = False

    @classmethod
    def from_url(
        cls, url: str, rate: ThrottleRate | None = None, *, key: str = DEFAULT_KEY
    ) -> RedisThrottle:
        throttle = cls(open_redis(url), rate, key=key)
        throttle._owns_client = True
        return throttle

    async def acquire(self) -> None:
        interval = round(self._rate.interval_seconds * 1_000_000)
        tolerance = round(self._rate.tolerance_seconds * 1_000_000)
        delay_us = await self._script(keys=[self._key], args=[interval, tolerance])
        if int(delay_us) > 0:
            await self._sleep(int(delay_us) / 1_000_000)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose()


def throttle_from_url(
    url: str, rate: ThrottleRate | None = None, *, key: str = DEFAULT_KEY
) -> InProcessThrottle | RedisThrottle:
    """`memory://` for one process, `redis://…` (or `rediss://`, `unix://`) to share."""
    if url.startswith("memory://"):
        return InProcessThrottle(rate)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisThrottle.from_url(url, rate, key=key)
    raise ValueError(f"no throttle for URL scheme of {url!r}")

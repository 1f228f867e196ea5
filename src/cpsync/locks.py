"""The one lock: named, held by an owner token, expiring on its own.

A holder that dies (kill -9) leaves a lock that expires after its time to live instead of
blocking forever; a holder can only release or extend a lock it still owns, so a slow
holder whose lock expired cannot release the next holder's lock. In-process for the
embedded mode, Redis (SET NX PX plus compare-and-delete scripts) when scaled out.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from cpsync.redis_client import open_redis


class Locks(Protocol):
    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool: ...

    async def release(self, name: str, owner: str) -> bool: ...

    async def extend(self, name: str, owner: str, ttl_seconds: float) -> bool: ...

    async def close(self) -> None: ...


def new_owner() -> str:
    return secrets.token_hex(16)


class MemoryLocks:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._held: dict[str, tuple[str, float]] = {}

    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        current = self._held.get(name)
        if current is not None and current[1] > self._monotonic():
            return False
        self._held[name] = (owner, self._monotonic() + ttl_seconds)
        return True

    async def release(self, name: str, owner: str) -> bool:
        if self._owned(name, owner):
            del self._held[name]
            return True
        return False

    async def extend(self, name: str, owner: str, ttl_seconds: float) -> bool:
        if not self._owned(name, owner):
            return False
        self._held[name] = (owner, self._monotonic() + ttl_seconds)
        return True

    async def close(self) -> None:
        self._held.clear()

    def _owned(self, name: str, owner: str) -> bool:
        current = self._held.get(name)
        return current is not None and current[0] == owner and current[1] > self._monotonic()


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class RedisLocks:
    def __init__(self, url: str, prefix: str = "cpsync:lock:") -> None:
        self._client = open_redis(url)
        self._prefix = prefix
        self._release: Any = self._client.register_script(_RELEASE)
        self._extend: Any = self._client.register_script(_EXTEND)

    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        done = await self._client.set(self._prefix + name, owner, nx=True, px=_ms(ttl_seconds))
        return bool(done)

    async def release(self, name: str, owner: str) -> bool:
        return bool(await self._release(keys=[self._prefix + name], args=[owner]))

    async def extend(self, name: str, owner: str, ttl_seconds: float) -> bool:
        result = await self._extend(keys=[self._prefix + name], args=[owner, _ms(ttl_seconds)])
        return bool(result)

    async def close(self) -> None:
        await self._client.aclose()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def open_locks(cache_url: str, namespace: str = "cpsync") -> Locks:
    """Locks live where the cache lives: in this process, or in Redis under `namespace`
    (the deployment's `queue_name`), so deployments sharing one Redis never block each other."""
    if cache_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisLocks(cache_url, prefix=f"{namespace}:lock:")
    return MemoryLocks()


async def run_coalesced(
    locks: Locks,
    flags: Flags,
    name: str,
    work: Callable[[], Awaitable[object]],
    ttl_seconds: float,
    *,
    wait_poll_seconds: float | None = None,
) -> int:
    """Run `work` under lock `name`, folding concurrent requests into at most one more run.

    A request while a run is going leaves a "pending" flag and returns at once; the
    running holder sees the flag when it finishes and runs once more for all of them.
    The lock is extended while work runs, so only a dead holder lets it expire.

    With `wait_poll_seconds`, a call that found the lock held does not return at once:
    it polls until a run has taken its request, or the lock comes free (the holder died,
    kill -9, and its lock expired) and it serves the pending requests itself. A task
    redelivered after its worker died then never leaves a request unserved.

    Returns how many runs this call did.
    """
    pending = _pending_flag(name)
    await flags.set(pending, b"1", ttl_seconds)
    runs = 0
    while True:
        owner = new_owner()
        if not await locks.acquire(name, owner, ttl_seconds):
            break
        try:
            runs += await _drain(locks, flags, name, owner, work, ttl_seconds)
        finally:
            await locks.release(name, owner)
        # A request may have landed between the last check and the release.
        if await flags.get(pending) is None:
            return runs
    if runs or wait_poll_seconds is None:
        return runs
    return await _wait_for_holder(locks, flags, name, work, ttl_seconds, wait_poll_seconds)


async def _wait_for_holder(
    locks: Locks,
    flags: Flags,
    name: str,
    work: Callable[[], Awaitable[object]],
    ttl_seconds: float,
    poll_seconds: float,
) -> int:
    """Until a run has taken our request (its pending flag is gone), or we may run."""
    while await flags.get(_pending_flag(name)) is not None:
        owner = new_owner()
        if await locks.acquire(name, owner, ttl_seconds):
            # The holder died (its lock expired) or just finished: serve what is
            # pending, without adding a request of our own (that would cost a run).
            try:
                return await _drain(locks, flags, name, owner, work, ttl_seconds)
            finally:
                await locks.release(name, owner)
        await asyncio.sleep(poll_seconds)  # real time: other processes run meanwhile
    return 0


async def _drain(
    locks: Locks,
    flags: Flags,
    name: str,
    owner: str,
    work: Callable[[], Awaitable[object]],
    ttl_seconds: float,
) -> int:
    """Run `work` once per pending request popped, the lock kept alive meanwhile."""
    runs = 0
    async with _kept_alive(locks, name, owner, ttl_seconds):
        while await flags.pop(_pending_flag(name)) is not None:
            await work()
            runs += 1
    return runs


def _pending_flag(name: str) -> str:
    return f"pending:{name}"


class Flags(Protocol):
    """The slice of `cpsync.cache.Cache` that coalescing needs."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    async def pop(self, key: str) -> bytes | None: ...


@asynccontextmanager
async def _kept_alive(
    locks: Locks, name: str, owner: str, ttl_seconds: float
) -> AsyncIterator[None]:
    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(ttl_seconds / 3)
            await locks.extend(name, owner, ttl_seconds)

    beat = asyncio.create_task(heartbeat())
    try:
        yield
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat

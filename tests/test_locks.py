"""Owner-token locks and coalesced runs, in-process and on the machine's Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from cpsync.cache import MemoryCache, RedisCache
from cpsync.locks import LockBusyError, Locks, MemoryLocks, RedisLocks, held, run_coalesced
from tests.conftest import unavailable

REDIS_URL = "redis://127.0.0.1:6379/0"


async def redis_up() -> bool:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (aioredis.RedisError, OSError):
        return False
    finally:
        await client.aclose()
    return True


@pytest.fixture(params=["memory", "redis"])
async def backends(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Locks, object]]:
    if request.param == "memory":
        yield MemoryLocks(), MemoryCache()
        return
    if not await redis_up():
        unavailable("Redis at 127.0.0.1:6379 not reachable")
    locks, cache = RedisLocks(REDIS_URL), RedisCache(REDIS_URL, prefix=f"t{uuid.uuid4().hex}:")
    yield locks, cache
    await locks.close()
    await cache.close()


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_only_the_owner_releases(backends: tuple[Locks, object]) -> None:
    locks, _ = backends
    name = unique("user")
    assert await locks.acquire(name, "a", 5)
    assert not await locks.acquire(name, "b", 5)
    assert not await locks.release(name, "b")
    assert not await locks.extend(name, "b", 5)
    assert await locks.extend(name, "a", 5)
    assert await locks.release(name, "a")
    assert await locks.acquire(name, "b", 5)


async def test_a_dead_holders_lock_expires(backends: tuple[Locks, object]) -> None:
    locks, _ = backends
    name = unique("user")
    assert await locks.acquire(name, "dead", 0.2)
    await asyncio.sleep(0.3)
    assert await locks.acquire(name, "next", 5)
    assert not await locks.release(name, "dead")  # the late holder cannot free the new one


async def test_held_raises_when_busy(backends: tuple[Locks, object]) -> None:
    locks, _ = backends
    name = unique("job")
    async with held(locks, name, 5):
        with pytest.raises(LockBusyError):
            async with held(locks, name, 5):
                pass
    async with held(locks, name, 5):
        pass


async def test_fifty_concurrent_requests_make_at_most_two_runs(
    backends: tuple[Locks, object],
) -> None:
    locks, cache = backends
    name = unique("sync")
    running = 0
    overlaps = 0
    runs = 0

    async def work() -> None:
        nonlocal running, overlaps, runs
        running += 1
        overlaps = max(overlaps, running)
        runs += 1
        await asyncio.sleep(0.5)
        running -= 1

    done = await asyncio.gather(
        *(run_coalesced(locks, cache, name, work, 5) for _ in range(50))  # type: ignore[arg-type]
    )
    assert overlaps == 1
    assert 1 <= runs <= 2
    assert sum(done) == runs


async def test_a_request_after_a_run_gets_its_own_run(backends: tuple[Locks, object]) -> None:
    locks, cache = backends
    name = unique("sync")
    calls = []

    async def work() -> None:
        calls.append(1)

    await run_coalesced(locks, cache, name, work, 5)  # type: ignore[arg-type]
    await run_coalesced(locks, cache, name, work, 5)  # type: ignore[arg-type]
    assert len(calls) == 2


async def test_long_work_keeps_its_lock(backends: tuple[Locks, object]) -> None:
    locks, cache = backends
    name = unique("sync")

    async def work() -> None:
        await asyncio.sleep(0.8)  # longer than the 0.3 s ttl: the heartbeat must extend it
        assert not await locks.acquire(name, "intruder", 0.3)

    assert await run_coalesced(locks, cache, name, work, 0.3) == 1  # type: ignore[arg-type]

"""Owner-token locks and coalesced runs, in-process and on the machine's Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from cpsync.cache import MemoryCache, RedisCache, open_cache
from cpsync.locks import (
    LockBusyError,
    Locks,
    MemoryLocks,
    RedisLocks,
    held,
    open_locks,
    run_coalesced,
)


@pytest.fixture(params=["memory", "redis"])
async def backends(
    request: pytest.FixtureRequest, queue_name: str
) -> AsyncIterator[tuple[Locks, object]]:
    if request.param == "memory":
        yield MemoryLocks(), MemoryCache()
        return
    url = request.getfixturevalue("redis_url")
    locks = RedisLocks(url, prefix=f"{queue_name}:lock:")
    cache = RedisCache(url, prefix=f"{queue_name}:")
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


async def test_deployments_sharing_one_redis_keep_locks_and_values_apart(
    redis_url: str, run_namespace: str, queue_name: str
) -> None:
    """Two test runs (or deployments) differ only by `queue_name`: nothing crosses over."""
    ours, theirs = f"{queue_name}-a", f"{queue_name}-b"
    our_locks, their_locks = open_locks(redis_url, ours), open_locks(redis_url, theirs)
    our_cache, their_cache = open_cache(redis_url, ours), open_cache(redis_url, theirs)
    probe = aioredis.Redis.from_url(redis_url, socket_timeout=None)
    try:
        assert await our_locks.acquire("scheduler:job", "us", 5)
        assert await their_locks.acquire("scheduler:job", "them", 5)
        await our_cache.set("rate:ip", b"ours", 5)
        assert await their_cache.get("rate:ip") is None
        keys = {key.decode() async for key in probe.scan_iter(match=f"{queue_name}-*")}
        assert keys == {
            f"{ours}:lock:scheduler:job",
            f"{theirs}:lock:scheduler:job",
            f"{ours}:rate:ip",
        }
        assert queue_name.startswith(run_namespace)  # swept at the end of the session
    finally:
        for closable in (our_locks, their_locks, our_cache, their_cache):
            await closable.close()
        await probe.aclose()

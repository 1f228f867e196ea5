"""Owner-token locks and coalesced runs, in-process and on the machine's Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from cpsync.cache import MemoryCache, RedisCache, open_cache
from cpsync.locks import (
    Locks,
    MemoryLocks,
    RedisLocks,
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


async def test_fifty_concurrent_requests_make_at_most_two_runs(
    backends: tuple[Locks, object],
) -> None:
    locks, cache = backends
    name = unique("sync")
    requests = 50
    running = 0
    overlaps = 0
    runs = 0
    turned_away = 0
    all_asked = asyncio.Event()

    async def work() -> None:
        nonlocal running, overlaps, runs
        running += 1
        overlaps = max(overlaps, running)
        runs += 1
        # The first run lasts until every other request has been folded in.
        await all_asked.wait()
        running -= 1

    async def request() -> int:
        nonlocal turned_away
        done = await run_coalesced(locks, cache, name, work, 5)  # type: ignore[arg-type]
        if done == 0:
            turned_away += 1
            if turned_away == requests - 1:
                all_asked.set()
        return done

    done = await asyncio.gather(*(request() for _ in range(requests)))
    assert overlaps == 1
    # The first run, and one more if anyone asked after it had begun.
    assert 1 <= runs <= 2
    assert sorted(done) == [0] * (requests - 1) + [runs]


async def test_a_request_after_a_run_gets_its_own_run(backends: tuple[Locks, object]) -> None:
    locks, cache = backends
    name = unique("sync")
    calls = []

    async def work() -> None:
        calls.append(1)

    await run_coalesced(locks, cache, name, work, 5)  # type: ignore[arg-type]
    await run_coalesced(locks, cache, name, work, 5)  # type: ignore[arg-type]
    assert len(calls) == 2


async def test_a_waiting_request_is_served_once_a_dead_holders_lock_expires(
    backends: tuple[Locks, object],
) -> None:
    """A redelivered task whose first worker was killed mid-run must not be turned away."""
    locks, cache = backends
    name = unique("sync")
    calls = []

    async def work() -> None:
        calls.append(1)

    assert await locks.acquire(name, "killed-worker", 0.2)
    assert await run_coalesced(locks, cache, name, work, 5) == 0  # type: ignore[arg-type]
    waited = await run_coalesced(
        locks,
        cache,  # type: ignore[arg-type]
        name,
        work,
        5,
        wait_poll_seconds=0.01,
    )
    assert (waited, len(calls)) == (1, 1)  # one run served both pending requests


class CountedHeartbeats:
    """The real locks, counting successful extensions so a test waits for heartbeats
    instead of sleeping for a guessed time."""

    def __init__(self, inner: Locks) -> None:
        self._inner = inner
        self.extensions = 0
        self.extended = asyncio.Event()

    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        return await self._inner.acquire(name, owner, ttl_seconds)

    async def release(self, name: str, owner: str) -> bool:
        return await self._inner.release(name, owner)

    async def extend(self, name: str, owner: str, ttl_seconds: float) -> bool:
        extended = await self._inner.extend(name, owner, ttl_seconds)
        if extended:
            self.extensions += 1
            self.extended.set()
        return extended

    async def close(self) -> None:
        await self._inner.close()


async def test_long_work_keeps_its_lock(backends: tuple[Locks, object]) -> None:
    inner, cache = backends
    locks = CountedHeartbeats(inner)
    name = unique("sync")
    ttl = 1.5

    async def work() -> None:
        # Four heartbeats, one per ttl/3: the work has outlived its lock's first ttl.
        while locks.extensions < 4:
            await locks.extended.wait()
            locks.extended.clear()
        assert not await inner.acquire(name, "intruder", ttl)

    assert await run_coalesced(locks, cache, name, work, ttl) == 1  # type: ignore[arg-type]


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

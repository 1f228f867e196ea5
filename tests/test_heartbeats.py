"""Workers and schedulers publish heartbeats to the shared cache; /readyz and the admin
page report a kind that has none fresh."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cpsync.cache import Cache, MemoryCache, RedisCache


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest, queue_name: str) -> AsyncIterator[Cache]:
    opened: Cache
    if request.param == "memory":
        opened = MemoryCache()
    else:
        opened = RedisCache(request.getfixturevalue("redis_url"), prefix=f"{queue_name}:")
    yield opened
    await opened.close()


async def test_a_map_keeps_each_field_and_expires_as_a_whole(cache: Cache) -> None:
    await cache.set_field("map", "a", b"1", 60)
    await cache.set_field("map", "b", b"2", 60)
    await cache.set_field("map", "a", b"3", 60)
    assert await cache.fields("map") == {"a": b"3", "b": b"2"}
    await cache.delete_field("map", "a")
    assert await cache.fields("map") == {"b": b"2"}
    assert await cache.fields("other") == {}
    await cache.set_field("short", "a", b"1", 0.001)
    assert await _eventually_empty(cache, "short")


async def _eventually_empty(cache: Cache, key: str) -> bool:
    import asyncio

    for _ in range(1000):  # a generous safety net; the map expires after 1 ms
        if await cache.fields(key) == {}:
            return True
        await asyncio.sleep(0.01)
    return False

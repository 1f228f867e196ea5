"""The one small async cache interface, in-process or Redis, chosen by `CPSYNC_CACHE_URL`.

`memory://` (the embedded default) keeps values in this process; `redis://...` shares them
between processes. Both expire keys after a time to live, and `incr` starts a counter with an
expiry on its first increment, which is what fixed-window rate limits need.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as redis

from cpsync.errors import CpsyncError
from cpsync.redis_client import open_redis

Monotonic = Callable[[], float]


class CacheError(CpsyncError):
    status_code = 503


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    async def pop(self, key: str) -> bytes | None:
        """Get and delete in one step: a value can be taken once."""
        ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, ttl_seconds: float) -> int:
        """Add one; a new counter expires `ttl_seconds` after its first increment."""
        ...

    async def set_field(self, key: str, field: str, value: bytes, ttl_seconds: float) -> None:
        """Set one field of the map `key`; the map expires `ttl_seconds` after its last write."""
        ...

    async def fields(self, key: str) -> dict[str, bytes]: ...

    async def delete_field(self, key: str, field: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    def __init__(self, monotonic: Monotonic = time.monotonic, max_keys: int = 100_000) -> None:
        self._monotonic = monotonic
        self._max_keys = max_keys
        self._values: dict[str, tuple[bytes, float]] = {}
        self._counters: dict[str, tuple[int, float]] = {}
        self._maps: dict[str, tuple[dict[str, bytes], float]] = {}

    async def get(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None or entry[1] <= self._monotonic():
            self._values.pop(key, None)
            return None
        return entry[0]

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self._evict_if_full(self._values)
        self._values[key] = (value, self._monotonic() + ttl_seconds)

    async def pop(self, key: str) -> bytes | None:
        value = await self.get(key)
        self._values.pop(key, None)
        return value

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._counters.pop(key, None)

    async def incr(self, key: str, ttl_seconds: float) -> int:
        now = self._monotonic()
        count, expires_at = self._counters.get(key, (0, 0.0))
        if expires_at <= now:
            self._evict_if_full(self._counters)
            count, expires_at = 0, now + ttl_seconds
        self._counters[key] = (count + 1, expires_at)
        return count + 1

    async def set_field(self, key: str, field: str, value: bytes, ttl_seconds: float) -> None:
        self._evict_if_full(self._maps)
        entries = await self.fields(key)
        entries[field] = value
        self._maps[key] = (entries, self._monotonic() + ttl_seconds)

    async def fields(self, key: str) -> dict[str, bytes]:
        entry = self._maps.get(key)
        if entry is None or entry[1] <= self._monotonic():
            self._maps.pop(key, None)
            return {}
        return dict(entry[0])

    async def delete_field(self, key: str, field: str) -> None:
        entry = self._maps.get(key)
        if entry is not None:
            entry[0].pop(field, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._values.clear()
        self._counters.clear()
        self._maps.clear()

    def _evict_if_full(self, store: dict[str, Any]) -> None:
        if len(store) < self._max_keys:
            return
        now = self._monotonic()
        for key in [k for k, (_, expires_at) in store.items() if expires_at <= now]:
            del store[key]
        while len(store) >= self._max_keys:
            del store[next(iter(store))]


class RedisCache:
    def __init__(self, url: str, prefix: str = "cpsync:") -> None:
        self._client = open_redis(url)
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._call(self._client.get(self._prefix + key))
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._call(self._client.set(self._prefix + key, value, px=_millis(ttl_seconds)))

    async def pop(self, key: str) -> bytes | None:
        value: bytes | None = await self._call(self._client.getdel(self._prefix + key))
        return value

    async def delete(self, key: str) -> None:
        await self._call(self._client.delete(self._prefix + key))

    async def incr(self, key: str, ttl_seconds: float) -> int:
        name = self._prefix + key
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            # NX: only the first increment sets the expiry, so the window is fixed.
            pipe.pexpire(name, _millis(ttl_seconds), nx=True)
            results = await self._call(pipe.execute())
        return int(results[0])

    async def set_field(self, key: str, field: str, value: bytes, ttl_seconds: float) -> None:
        name = self._prefix + key
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(name, field, value)
            pipe.pexpire(name, _millis(ttl_seconds))
            await self._call(pipe.execute())

    async def fields(self, key: str) -> dict[str, bytes]:
        entries: dict[bytes, bytes] = await self._call(self._client.hgetall(self._prefix + key))
        return {name.decode(): value for name, value in entries.items()}

    async def delete_field(self, key: str, field: str) -> None:
        await self._call(self._client.hdel(self._prefix + key, field))

    async def ping(self) -> None:
        await self._call(self._client.ping())

    async def close(self) -> None:
        await self._client.aclose()

    @staticmethod
    async def _call(awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except (redis.RedisError, OSError) as exc:
            raise CacheError(f"cache unavailable: {exc}") from exc


def _millis(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def open_cache(url: str, namespace: str = "cpsync") -> Cache:
    """`namespace` (the deployment's `queue_name`) prefixes every Redis key, so deployments
    sharing one Redis keep their values apart."""
    if url.startswith("memory://"):
        return MemoryCache()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisCache(url, prefix=f"{namespace}:")
    raise CacheError(f"unsupported cache URL {url.split(':', 1)[0]}://; use memory:// or redis://")

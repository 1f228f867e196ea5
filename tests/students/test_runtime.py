"""In scaled mode every process's Codeforces calls pass one token bucket in Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from cpsync.cache import MemoryCache
from cpsync.clock import utc_now
from cpsync.http import HttpClient
from cpsync.settings import Settings
from cpsync.students.runtime import StudentsRuntime
from cpsync.students.throttle import InProcessThrottle, RedisThrottle


def test_embedded_mode_throttles_in_process() -> None:
    runtime = StudentsRuntime(Settings(_env_file=None), None, None, MemoryCache(), utc_now)  # type: ignore[arg-type]
    assert isinstance(runtime.throttle, InProcessThrottle)


@pytest.mark.services
async def test_two_processes_share_one_bucket_through_redis(
    redis_url: str, queue_name: str
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        cache_url=redis_url,
        queue_name=queue_name,
        codeforces_interval_seconds=0.2,
    )
    async with HttpClient(settings) as http:
        runtimes = [
            StudentsRuntime(settings, None, http, MemoryCache(), utc_now)  # type: ignore[arg-type]
            for _ in range(2)
        ]
        try:
            assert all(isinstance(r.throttle, RedisThrottle) for r in runtimes)
            started = time.monotonic()
            await asyncio.gather(*(r.throttle.acquire() for r in runtimes for _ in range(3)))
            # Six calls at one per 0.2 s from two "processes": at least five intervals.
            assert time.monotonic() - started >= 0.95
        finally:
            for runtime in runtimes:
                await runtime.aclose()

"""In scaled mode every process's Codeforces calls pass one token bucket in Redis."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from cpsync.pacing import InProcessThrottle, RedisThrottle
from cpsync.resources import open_resources
from cpsync.settings import Settings
from tests.replay import Reply, replay_server


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        **values,  # type: ignore[arg-type]
    )


async def test_embedded_mode_throttles_in_process(tmp_path: Path) -> None:
    async with open_resources(_settings(tmp_path)) as resources:
        assert isinstance(resources.codeforces_throttle, InProcessThrottle)


@pytest.mark.services
async def test_two_processes_share_one_bucket_through_redis(
    tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    settings = _settings(
        tmp_path, cache_url=redis_url, queue_name=queue_name, codeforces_interval_seconds=0.2
    )
    async with AsyncExitStack() as stack:
        processes = [await stack.enter_async_context(open_resources(settings)) for _ in range(2)]
        throttles = [process.codeforces_throttle for process in processes]
        assert all(isinstance(throttle, RedisThrottle) for throttle in throttles)
        started = time.monotonic()
        await asyncio.gather(*(throttle.acquire() for throttle in throttles for _ in range(3)))
        # Six calls at one per 0.2 s from two "processes": at least five intervals.
        assert time.monotonic() - started >= 0.95


async def test_the_process_http_client_paces_codeforces_with_its_bucket(tmp_path: Path) -> None:
    """One pacing policy: Codeforces' host waits on the (shared) token bucket, in the
    contest refresh and student sync alike, while other hosts are not held up by it."""
    with replay_server() as codeforces, replay_server() as other:
        for server in (codeforces, other):
            server.routes[("GET", "/api/ping")] = [Reply(200, b"{}")]
        settings = _settings(
            tmp_path,
            codeforces_base_url=codeforces.base_url,
            codeforces_interval_seconds=600,
            http_min_interval_seconds=0,
        )
        async with open_resources(settings) as resources:
            await resources.http.send("GET", f"{codeforces.base_url}/api/ping")
            second = asyncio.create_task(
                resources.http.send("GET", f"{codeforces.base_url}/api/ping")
            )
            answer = await resources.http.send("GET", f"{other.base_url}/api/ping")
            assert answer.status == 200
            # The bucket allows the next Codeforces call in ten minutes.
            assert not second.done()
            assert len(codeforces.requests) == 1
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)

"""One of each resource per process: the app (`cpsync serve`), `cpsync worker` and
`cpsync scheduler` each open one database engine, the two HTTP clients (`http` and the
guarded `user_http`), one lock store and one cache, and at most one scheduler loop.

Counted by instrumenting the constructors in-process while each entry point starts up.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from cpsync import cache, http, locks, scheduler
from cpsync.app import create_app
from cpsync.settings import Settings
from cpsync.worker import run_scheduler, worker_broker

ONE_PROCESS = {"engine": 1, "http client": 2, "lock store": 1, "cache": 1}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        refresh_interval_minutes=0,
    )


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many of each resource were constructed (and scheduler loops started)."""
    counts: Counter[str] = Counter()

    def counting(cls: type, what: str, method: str = "__init__") -> None:
        original: Callable[..., Any] = getattr(cls, method)

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[what] += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, counted)

    counting(AsyncEngine, "engine")
    counting(http.HttpClient, "http client")
    counting(locks.MemoryLocks, "lock store")
    counting(locks.RedisLocks, "lock store")
    counting(cache.MemoryCache, "cache")
    counting(cache.RedisCache, "cache")
    counting(scheduler.Scheduler, "scheduler loop", "run_forever")
    return counts


async def test_the_app_opens_one_of_each(settings: Settings, built: Counter[str]) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0)  # the embedded scheduler loop starts
    assert built == {**ONE_PROCESS, "scheduler loop": 1}


async def test_a_scaled_web_process_runs_no_scheduler_loop(
    settings: Settings, built: Counter[str], redis_url: str, queue_name: str
) -> None:
    scaled = settings.model_copy(
        update={"broker_url": redis_url, "cache_url": redis_url, "queue_name": queue_name}
    )
    app = create_app(scaled)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0)
    assert built == ONE_PROCESS


async def test_the_worker_opens_one_of_each(settings: Settings, built: Counter[str]) -> None:
    broker = worker_broker(settings)
    broker.is_worker_process = True  # what taskiq's worker sets before starting it
    await broker.startup()
    try:
        assert built == ONE_PROCESS
    finally:
        await broker.shutdown()


async def test_the_scheduler_opens_one_of_each(
    settings: Settings, built: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ticked = asyncio.Event()
    tick = scheduler.Scheduler.tick

    async def first_tick(self: scheduler.Scheduler) -> list[str]:
        fired = await tick(self)
        ticked.set()
        return fired

    monkeypatch.setattr(scheduler.Scheduler, "tick", first_tick)
    running = asyncio.create_task(run_scheduler(settings))
    await asyncio.wait_for(ticked.wait(), 120)  # a safety net: fails, never hangs
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert built == {**ONE_PROCESS, "scheduler loop": 1}

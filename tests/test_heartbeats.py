"""Workers and schedulers publish heartbeats to the shared cache; /readyz and the admin
page report a kind none of whose processes beat lately (issue 14 item 7)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from cpsync.accounts.models import Role
from cpsync.app import create_app
from cpsync.cache import Cache, MemoryCache, RedisCache
from cpsync.heartbeats import FORGET_SECONDS, KINDS, SCHEDULER, WORKER, Heartbeats
from cpsync.settings import Settings
from cpsync.worker import worker_broker
from tests.recordings import RECORDED_AT, MutableClock
from tests.web.conftest import create_user, make_client, sign_in

INTERVAL = 15.0  # the default heartbeat_seconds: a kind is missing after 45 s


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
    assert await eventually(lambda: cache.fields("short"), {})


async def eventually(read: Callable[[], Awaitable[object]], expected: object) -> bool:
    """Polls a state change; the deadline is only a safety net for a loaded machine."""
    for _ in range(1000):
        if await read() == expected:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_kind_is_missing_after_three_missed_beats(cache: Cache) -> None:
    clock = MutableClock(RECORDED_AT)
    heartbeats = Heartbeats(cache, clock, INTERVAL)
    assert await heartbeats.missing(KINDS) == [SCHEDULER, WORKER]
    await heartbeats.beat(SCHEDULER, "host-a:10")
    assert await heartbeats.missing(KINDS) == [WORKER]
    await heartbeats.beat(WORKER, "host-b:20")
    clock.advance(timedelta(seconds=3 * INTERVAL))
    assert await heartbeats.missing(KINDS) == []
    await heartbeats.beat(WORKER, "host-c:30")
    clock.advance(timedelta(seconds=1))
    # The scheduler went quiet: still listed, as missing; the other worker covers.
    assert await heartbeats.missing(KINDS) == [SCHEDULER]
    listed = [(b.kind, b.ident, b.fresh) for b in await heartbeats.listing()]
    assert listed == [
        (SCHEDULER, "host-a:10", False),
        (WORKER, "host-b:20", False),
        (WORKER, "host-c:30", True),
    ]
    assert (await heartbeats.listing())[2].seen_at == RECORDED_AT + timedelta(seconds=45)
    clock.advance(timedelta(seconds=FORGET_SECONDS))
    assert await heartbeats.listing() == []  # forgotten a day after the last beat
    assert await cache.fields("heartbeats") == {}


async def test_beating_publishes_while_the_body_runs_and_leaves_at_its_end(cache: Cache) -> None:
    heartbeats = Heartbeats(cache, MutableClock(RECORDED_AT), INTERVAL)

    async def beating_kinds() -> list[str]:
        return [beat.kind for beat in await heartbeats.listing()]

    async with heartbeats.beating(WORKER, "host:1"):
        assert await eventually(beating_kinds, [WORKER])
    assert await beating_kinds() == []


async def test_a_worker_process_beats_while_it_runs(
    tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    settings = scaled(tmp_path, redis_url, queue_name)
    broker = worker_broker(settings)
    broker.is_worker_process = True  # what taskiq's worker sets before starting it
    reader = RedisCache(redis_url, prefix=f"{queue_name}:")
    heartbeats = Heartbeats(reader, MutableClock(RECORDED_AT), INTERVAL)

    async def workers() -> list[str]:
        return [beat.kind for beat in await heartbeats.listing() if beat.kind == WORKER]

    try:
        await broker.startup()
        try:
            assert await eventually(workers, [WORKER])
        finally:
            await broker.shutdown()
        assert await workers() == []  # a clean shutdown is not a missing worker
    finally:
        await reader.close()


def scaled(tmp_path: Path, redis_url: str, queue_name: str, cache_url: str = "") -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        broker_url=redis_url,
        cache_url=cache_url or redis_url,
        queue_name=queue_name,
        refresh_interval_minutes=0,
        # A probe that is merely slow on the loaded CI machine must not read as "down".
        readyz_timeout_seconds=60,
    )


async def test_readyz_names_the_missing_scheduler_or_worker(
    tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    clock = MutableClock(RECORDED_AT)
    app = create_app(scaled(tmp_path, redis_url, queue_name), clock=clock)
    async with app.router.lifespan_context(app), make_client(app) as http:
        heartbeats = Heartbeats(app.state.resources.cache, clock, INTERVAL)
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {
            "database": "ok",
            "cache": "ok",
            "broker": "ok",
            "scheduler": "missing: no scheduler heartbeat in the last 45 s",
            "worker": "missing: no worker heartbeat in the last 45 s",
        }
        await heartbeats.beat(SCHEDULER, "host-a:10")
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["scheduler"] == "ok"
        assert ready.json()["checks"]["worker"].startswith("missing: no worker heartbeat")

        await heartbeats.beat(WORKER, "host-b:20")
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert set(ready.json()["checks"].values()) == {"ok"}

        clock.advance(timedelta(seconds=3 * INTERVAL + 1))
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["worker"].startswith("missing")


async def test_readyz_expects_no_heartbeat_it_cannot_see(
    tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    """An in-process cache shows no other process's heartbeat: not checked, not failed."""
    settings = scaled(tmp_path, redis_url, queue_name, cache_url="memory://")
    app = create_app(settings, clock=MutableClock(RECORDED_AT))
    async with app.router.lifespan_context(app), make_client(app) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert set(ready.json()["checks"]) == {"database", "cache", "broker"}


async def test_the_admin_page_lists_heartbeats_and_flags_a_missing_kind(
    tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    clock = MutableClock(RECORDED_AT)
    app = create_app(scaled(tmp_path, redis_url, queue_name), clock=clock)
    async with app.router.lifespan_context(app), make_client(app) as http:
        heartbeats = Heartbeats(app.state.resources.cache, clock, INTERVAL)
        await heartbeats.beat(SCHEDULER, "host-a:10")
        clock.advance(timedelta(seconds=3 * INTERVAL + 1))
        await heartbeats.beat(WORKER, "host-b:20")
        await create_user(app, "root@example.com", Role.ADMIN)
        await sign_in(http, "root@example.com")
        page = (await http.get("/admin")).text
        assert "Background processes" in page
        assert "No scheduler has sent a heartbeat in the last 45 seconds" in page
        assert "No worker has sent" not in page
        rows = page.split('aria-labelledby="processes-title"', 1)[1].split("</section>", 1)[0]
        assert rows.index("host-a:10") < rows.index("missing") < rows.index("host-b:20")
        assert "alive" in rows.split("host-b:20", 1)[1]

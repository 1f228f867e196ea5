"""Body and header caps, rate limits with reset, client IP behind proxies, security headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as redis
from fastapi import FastAPI

from cpsync.app import create_app
from cpsync.cache import MemoryCache, RedisCache
from cpsync.settings import Settings
from cpsync.web.ratelimit import CacheWindowLimiter
from tests.recordings import MutableClock
from tests.web.conftest import WebClient, csrf_of, make_client


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # Nothing here depends on the database engine.
    return f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}"


@pytest.fixture
async def limited_app(
    database, web_settings: Settings, clock: MutableClock
) -> AsyncIterator[FastAPI]:
    settings = web_settings.model_copy(
        update={
            "rate_limit_requests": 5,
            "rate_limit_auth_requests": 2,
            "rate_limit_window_seconds": 60,
            "trusted_proxies": "10.0.0.0/8, 2001:db8::1",
            "max_body_bytes": 2048,
            "max_header_bytes": 4096,
        }
    )
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


# Body and header caps


async def test_declared_oversized_body_is_refused(limited_app: FastAPI) -> None:
    async with make_client(limited_app) as http:
        answer = await http.post(
            "/signin",
            content=b"x" * 4096,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 413


async def test_streamed_oversized_body_is_refused(limited_app: FastAPI) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"email=" + b"x" * 500

    async with make_client(limited_app) as http:
        token = csrf_of(await http.get("/signin"))
        answer = await http.post(
            "/signin",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded", "x-csrf-token": token},
        )
        assert answer.status_code == 413


async def test_a_body_under_the_cap_is_fine(limited_app: FastAPI) -> None:
    async with make_client(limited_app) as http:
        token = csrf_of(await http.get("/signin"))
        answer = await http.post(
            "/signin", data={"email": "a@b.co", "password": "x" * 1000, "csrf_token": token}
        )
        assert answer.status_code == 401


async def test_oversized_headers_are_refused(limited_app: FastAPI) -> None:
    async with make_client(limited_app) as http:
        assert (await http.get("/healthz", headers={"x-big": "y" * 5000})).status_code == 431
        many = {f"x-h{i}": "1" for i in range(120)}
        assert (await http.get("/healthz", headers=many)).status_code == 431
        assert (await http.get("/healthz", headers={"x-ok": "y" * 1000})).status_code == 200


# Rate limits


async def test_limit_then_429_with_retry_after_then_reset() -> None:
    now = [1000.0]
    limiter = CacheWindowLimiter(MemoryCache(monotonic=lambda: now[0]), now=lambda: now[0])
    decisions = [await limiter.hit("client", 3, 60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after == 20  # window [960, 1020)
    now[0] = 1019.0
    assert not (await limiter.hit("client", 3, 60)).allowed
    now[0] = 1020.0
    assert (await limiter.hit("client", 3, 60)).allowed
    assert (await limiter.hit("someone-else", 3, 60)).allowed


async def test_steady_traffic_does_not_keep_a_window_open_forever() -> None:
    now = [0.0]
    limiter = CacheWindowLimiter(MemoryCache(monotonic=lambda: now[0]), now=lambda: now[0])
    served = 0
    for step in range(240):  # one request every half second for two minutes
        now[0] = step * 0.5
        served += (await limiter.hit("steady", 10, 60)).allowed
    assert served == 20  # ten in each of the two windows


async def test_redis_limiter_counts_across_clients_and_resets(
    redis_url: str, queue_name: str
) -> None:
    now = [5_000_000.0]
    first, second = (
        RedisCache(redis_url, prefix=f"{queue_name}:"),
        RedisCache(redis_url, prefix=f"{queue_name}:"),
    )
    try:
        one = CacheWindowLimiter(first, now=lambda: now[0])
        two = CacheWindowLimiter(second, now=lambda: now[0])
        assert (await one.hit("ip", 2, 60)).allowed
        assert (await two.hit("ip", 2, 60)).allowed
        blocked = await one.hit("ip", 2, 60)
        assert not blocked.allowed
        assert 1 <= blocked.retry_after <= 60
        now[0] += 60
        assert (await two.hit("ip", 2, 60)).allowed
    finally:
        await first.close()
        await second.close()


async def test_middleware_answers_429_and_sign_in_is_stricter(limited_app: FastAPI) -> None:
    async with make_client(limited_app, ip="198.51.100.1") as http:
        token = csrf_of(await http.get("/signin"))
        form = {"email": "a@b.co", "password": "wrong", "csrf_token": token}
        assert (await http.post("/signin", data=form)).status_code == 401
        assert (await http.post("/signin", data=form)).status_code == 401
        blocked = await http.post("/signin", data=form)
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        # Browsing still has budget left: 5 per window, 4 used.
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/")).status_code == 429
    async with make_client(limited_app, ip="198.51.100.2") as other:
        assert (await other.get("/")).status_code == 200


async def test_middleware_window_resets(
    database, web_settings: Settings, clock: MutableClock
) -> None:
    settings = web_settings.model_copy(
        update={"rate_limit_requests": 2, "rate_limit_window_seconds": 60}
    )
    clock.now = clock.now.replace(second=0, microsecond=0)  # the start of a window
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application), make_client(application) as http:
        statuses = [(await http.get("/api/v1/platforms")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        blocked = await http.get("/api/v1/platforms")
        assert blocked.headers["retry-after"] == "60"  # the window began at the clock's minute
        clock.advance(timedelta(seconds=59))
        assert (await http.get("/api/v1/platforms")).status_code == 429
        clock.advance(timedelta(seconds=1))
        assert (await http.get("/api/v1/platforms")).status_code == 200


async def test_spoofed_forwarded_for_does_not_escape_the_limit(limited_app: FastAPI) -> None:
    # Straight from the internet: X-Forwarded-For is the client's own words.
    async with make_client(limited_app, ip="203.0.113.50") as http:
        statuses = [
            (
                await http.get("/api/v1/platforms", headers={"x-forwarded-for": f"192.0.2.{i}"})
            ).status_code
            for i in range(6)
        ]
    assert statuses[-1] == 429


async def test_behind_a_trusted_proxy_each_client_has_its_own_budget(limited_app: FastAPI) -> None:
    async with make_client(limited_app, ip="10.1.2.3") as proxy:
        for i in range(6):
            # The client tries to pose as another address; the proxy appends the real one.
            header = {"x-forwarded-for": f"192.0.2.{i}, 198.51.100.{i}"}
            assert (await proxy.get("/api/v1/platforms", headers=header)).status_code == 200
        same = {"x-forwarded-for": "192.0.2.77, 198.51.100.200"}
        statuses = [
            (await proxy.get("/api/v1/platforms", headers=same)).status_code for _ in range(6)
        ]
        assert statuses[-1] == 429


# Security headers


async def test_security_headers(client: WebClient) -> None:
    page = await client.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in page.headers  # plain HTTP on localhost
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "'sha256-" in docs.headers["content-security-policy"]
    assert "unsafe-inline" not in docs.headers["content-security-policy"]
    limited = await client.get("/healthz", headers={"x-big": "y" * 20000})
    assert limited.status_code == 431
    assert limited.headers["x-content-type-options"] == "nosniff"


async def test_two_processes_share_one_budget_through_redis(
    database, web_settings: Settings, clock: MutableClock, redis_url: str, queue_name: str
) -> None:
    settings = web_settings.model_copy(
        update={
            "cache_url": redis_url,
            "queue_name": queue_name,
            "rate_limit_requests": 4,
            "rate_limit_window_seconds": 3600,
        }
    )
    first, second = create_app(settings, clock=clock), create_app(settings, clock=clock)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        async with make_client(first) as one, make_client(second) as two:
            assert (await one.get("/readyz")).json()["checks"]["cache"] == "ok"
            statuses = [
                (await http.get("/api/v1/platforms")).status_code
                for http in (one, two, one, two, one)
            ]
    assert statuses == [200, 200, 200, 200, 429]
    # The budget lives under this test's namespace, not the deployment default's.
    probe = redis.Redis.from_url(redis_url, socket_timeout=None)
    try:
        assert [key async for key in probe.scan_iter(match=f"{queue_name}:rate:*")]
    finally:
        await probe.aclose()


async def test_a_slow_request_times_out_with_503() -> None:
    from cpsync.web.middleware import TimeoutMiddleware

    async def slow_app(scope, receive, send) -> None:
        await asyncio.sleep(5)

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    middleware = TimeoutMiddleware(slow_app, seconds=0.05)
    await middleware({"type": "http", "path": "/", "headers": []}, receive, send)
    assert sent[0]["status"] == 503

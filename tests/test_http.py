from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from cpsync.errors import PermanentError, RetriableError
from cpsync.http import (
    HttpClient,
    PermanentUpstreamError,
    ResponseTooLargeError,
    RetriableUpstreamError,
    parse_retry_after,
)
from cpsync.outbound import DestinationRefusedError, GuardedTransport, OutboundGuard, OutboundPolicy
from cpsync.settings import Settings
from tests.replay import ReplayServer, Reply, replay_server


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with replay_server() as replay:
        yield replay


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def client_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "http_timeout_seconds": 1,
        "http_max_retries": 3,
        "http_backoff_seconds": 0.5,
        "http_max_retry_after_seconds": 30,
        "http_min_interval_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def route(server: ReplayServer, *replies: Reply) -> str:
    server.routes[("GET", "/thing")] = list(replies)
    return f"{server.base_url}/thing"


def hits(server: ReplayServer) -> int:
    return sum(1 for method, target, _, _ in server.requests if target == "/thing")


async def test_success_returns_body_and_status(server: ReplayServer) -> None:
    url = route(server, Reply(200, b"hello"))
    async with HttpClient(client_settings()) as http:
        response = await http.request("GET", url, headers={"User-Agent": "x"})
    assert (response.status, response.body) == (200, b"hello")
    assert server.requests[0][2]["User-Agent"] == "x"


async def test_5xx_is_retried_with_growing_jittered_backoff(server: ReplayServer) -> None:
    url = route(server, Reply(500), Reply(502), Reply(200, b"ok"))
    sleep = RecordingSleep()
    async with HttpClient(client_settings(), sleep=sleep) as http:
        response = await http.request("GET", url)
    assert response.body == b"ok"
    assert hits(server) == 3
    first, second = sleep.delays
    assert 0.5 <= first <= 1.0
    assert 1.0 <= second <= 2.0


async def test_429_honours_retry_after(server: ReplayServer) -> None:
    url = route(server, Reply(429, headers={"Retry-After": "7"}), Reply(200, b"ok"))
    sleep = RecordingSleep()
    async with HttpClient(client_settings(), sleep=sleep) as http:
        await http.request("GET", url)
    assert sleep.delays == [7.0]


async def test_retry_after_is_capped(server: ReplayServer) -> None:
    url = route(server, Reply(503, headers={"Retry-After": "86400"}), Reply(200, b"ok"))
    sleep = RecordingSleep()
    async with HttpClient(client_settings(http_max_retry_after_seconds=5), sleep=sleep) as http:
        await http.request("GET", url)
    assert sleep.delays == [5.0]


async def test_gives_up_after_the_retry_budget(server: ReplayServer) -> None:
    url = route(server, Reply(500))
    async with HttpClient(client_settings(http_max_retries=2), sleep=RecordingSleep()) as http:
        with pytest.raises(RetriableUpstreamError) as caught:
            await http.request("GET", url)
    assert caught.value.upstream_status == 500
    assert hits(server) == 3


@pytest.mark.parametrize("status", [400, 403, 404, 410])
async def test_other_4xx_is_not_retried(server: ReplayServer, status: int) -> None:
    url = route(server, Reply(status))
    async with HttpClient(client_settings(), sleep=RecordingSleep()) as http:
        with pytest.raises(PermanentUpstreamError):
            await http.request("GET", url)
    assert hits(server) == 1


async def test_callers_tell_retriable_from_permanent_by_the_shared_error_tree(
    server: ReplayServer,
) -> None:
    """Code outside http.py (a task that schedules its retry) needs only cpsync.errors."""
    busy = route(server, Reply(429, headers={"Retry-After": "7"}))
    async with HttpClient(client_settings(http_max_retries=0)) as http:
        with pytest.raises(RetriableError) as retriable:
            await http.request("GET", busy)
        server.routes[("GET", "/gone")] = [Reply(404)]
        with pytest.raises(PermanentError) as permanent:
            await http.request("GET", f"{server.base_url}/gone")
    assert retriable.value.retry_after == 7.0
    assert isinstance(permanent.value, PermanentUpstreamError)
    assert permanent.value.upstream_status == 404


class CountingPacer:
    """A host's own pacing policy (as the shared Codeforces bucket is), counting turns."""

    def __init__(self) -> None:
        self.turns = 0

    async def acquire(self) -> None:
        self.turns += 1


async def test_a_host_with_its_own_pacer_waits_on_it_for_every_attempt(
    server: ReplayServer,
) -> None:
    url = route(server, Reply(503, headers={"Retry-After": "1"}), Reply(200, b"ok"))
    pacer = CountingPacer()
    sleep = RecordingSleep()
    settings = client_settings(http_min_interval_seconds=60)
    host = urlsplit(server.base_url).netloc
    async with HttpClient(settings, sleep=sleep, pacers={host: pacer}) as http:
        await http.request("GET", url)
    assert pacer.turns == 2  # the retry waited its turn too
    assert sleep.delays == [1.0]  # only Retry-After: the 60 s default does not apply on top


async def test_timeout_is_retried_then_reported(server: ReplayServer) -> None:
    url = route(server, Reply(200, b"late", delay=0.6))
    settings = client_settings(http_timeout_seconds=0.2, http_max_retries=1)
    async with HttpClient(settings, sleep=RecordingSleep()) as http:
        with pytest.raises(RetriableUpstreamError, match="timed out"):
            await http.request("GET", url)
    assert hits(server) == 2


async def test_connection_refused_is_a_retriable_error() -> None:
    async with HttpClient(client_settings(http_max_retries=0)) as http:
        with pytest.raises(RetriableUpstreamError, match=r"cannot reach 127\.0\.0\.1:9"):
            await http.request("GET", "http://127.0.0.1:9/nothing")


async def test_body_over_the_cap_is_refused(server: ReplayServer) -> None:
    url = route(server, Reply(200, b"x" * 5000))
    async with HttpClient(client_settings(http_max_response_bytes=1000)) as http:
        with pytest.raises(ResponseTooLargeError):
            await http.request("GET", url)
    assert hits(server) == 1


async def test_calls_to_one_host_are_spaced(server: ReplayServer) -> None:
    url = route(server, Reply(200, b"ok"))
    async with HttpClient(client_settings(http_min_interval_seconds=0.2)) as http:
        started = time.monotonic()
        for _ in range(3):
            await http.request("GET", url)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.4


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Sun, 22 Nov 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Sun, 22 Nov 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_errors_carry_the_answer_body(server: ReplayServer) -> None:
    url = route(server, Reply(400, b'{"status":"FAILED","comment":"handles: bad"}'))
    async with HttpClient(client_settings()) as http:
        with pytest.raises(PermanentUpstreamError) as caught:
            await http.request("GET", url)
    assert caught.value.body == b'{"status":"FAILED","comment":"handles: bad"}'
    assert caught.value.upstream_status == 400


async def test_a_refused_destination_is_not_retried(server: ReplayServer) -> None:
    url = route(server, Reply(200, b"hello"))
    sleep = RecordingSleep()
    transport = GuardedTransport(OutboundGuard(OutboundPolicy()))
    async with HttpClient(client_settings(), transport=transport, sleep=sleep) as http:
        with pytest.raises(DestinationRefusedError):
            await http.request("GET", url)
    assert (hits(server), sleep.delays) == (0, [])

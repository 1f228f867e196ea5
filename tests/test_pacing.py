"""The token bucket: its arithmetic, the in-process kind, and the shared Redis kind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from cpsync.pacing import (
    InProcessThrottle,
    RedisThrottle,
    ThrottleRate,
    reserve_slot,
    throttle_from_url,
)

# Reading two clocks (ours and Redis's) costs a little precision; lateness never helps.
TOLERANCE = 0.003


class FakeTime:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def assert_within_rate(start: float, moments: list[float], interval: float, burst: int = 1) -> None:
    """The k-th call (from 0) went no earlier than `start + (k - burst + 1) * interval`.

    Measured gaps between two calls are blurred by scheduling (a late call followed by a
    punctual one looks too close), but a call is never early: every call happens at or
    after its granted slot, and slots are exactly one interval apart. So this bound holds
    however loaded the machine is, and fails if the throttle ever lets calls bunch up.
    """
    for k, moment in enumerate(sorted(moments)):
        assert moment - start >= max(0, k - burst + 1) * interval - TOLERANCE, (k, moment - start)


async def test_default_is_one_call_per_two_seconds() -> None:
    fake = FakeTime()
    throttle = InProcessThrottle(clock=fake, sleep=fake.sleep)

    for _ in range(3):
        await throttle.acquire()

    # All three asked at t=100: the first goes, the others wait for t=102 and t=104.
    assert fake.sleeps == [2.0, 4.0]


async def test_idle_bucket_lets_a_call_through_at_once() -> None:
    fake = FakeTime()
    throttle = InProcessThrottle(ThrottleRate(interval_seconds=2.0), clock=fake, sleep=fake.sleep)
    await throttle.acquire()
    fake.now += 5
    await throttle.acquire()
    assert fake.sleeps == []


async def test_burst_goes_at_once_then_one_per_interval() -> None:
    fake = FakeTime()
    throttle = InProcessThrottle(
        ThrottleRate(interval_seconds=1.0, burst=3), clock=fake, sleep=fake.sleep
    )

    for _ in range(5):
        await throttle.acquire()

    # Three tokens at t=100, then the 4th at t=101 and the 5th at t=102.
    assert fake.sleeps == [1.0, 2.0]


def test_rate_validation() -> None:
    with pytest.raises(ValueError, match="positive interval"):
        ThrottleRate(interval_seconds=0)
    with pytest.raises(ValueError, match="burst"):
        ThrottleRate(burst=0)


@settings(max_examples=200, deadline=None, database=None)
@given(
    asks=st.lists(st.floats(min_value=0, max_value=50, allow_nan=False), min_size=1, max_size=40),
    interval=st.floats(min_value=0.1, max_value=5),
    burst=st.integers(min_value=1, max_value=4),
)
def test_granted_slots_never_exceed_the_rate(
    asks: list[float], interval: float, burst: int
) -> None:
    rate = ThrottleRate(interval_seconds=interval, burst=burst)
    tat = float("-inf")
    granted: list[float] = []
    for now in sorted(asks):
        delay, tat = reserve_slot(tat, now, rate)
        assert delay >= 0
        granted.append(now + delay)
    # Any `burst + 1` consecutive calls span at least one interval per extra call.
    for first, last in zip(granted, granted[burst:], strict=False):
        assert last - first >= interval - 1e-9


async def test_in_process_throttle_spaces_concurrent_callers() -> None:
    throttle = InProcessThrottle(ThrottleRate(interval_seconds=0.05))
    moments: list[float] = []
    start = time.monotonic()

    async def call() -> None:
        await throttle.acquire()
        moments.append(time.monotonic())

    await asyncio.gather(*(call() for _ in range(6)))

    assert len(moments) == 6
    assert_within_rate(start, moments, 0.05)


def test_throttle_from_url_picks_the_kind() -> None:
    assert isinstance(throttle_from_url("memory://"), InProcessThrottle)
    # Picking the kind opens no connection: any Redis URL will do.
    assert isinstance(throttle_from_url("redis://127.0.0.1:6379/0"), RedisThrottle)
    with pytest.raises(ValueError, match="no throttle"):
        throttle_from_url("amqp://guest@localhost")


# ---------------------------------------------------------------- Redis


@dataclass(frozen=True)
class Bucket:
    """Where a shared bucket lives: the test Redis, under this test's namespace."""

    url: str
    key: str

    def client(self) -> Redis:
        return Redis.from_url(self.url, socket_timeout=None, socket_connect_timeout=2)


@pytest.fixture
async def bucket(redis_url: str, queue_name: str) -> AsyncIterator[Bucket]:
    spot = Bucket(redis_url, f"{queue_name}:throttle")
    yield spot
    client = spot.client()
    await client.delete(spot.key)
    await client.aclose()


async def _acquire_times(bucket: Bucket, rate: ThrottleRate, calls: int) -> list[float]:
    """One client with its own connection, acquiring `calls` times in a row."""
    client = bucket.client()
    throttle = RedisThrottle(client, rate, key=bucket.key)
    moments: list[float] = []
    try:
        for _ in range(calls):
            await throttle.acquire()
            moments.append(time.monotonic())
    finally:
        await client.aclose()
    return moments


def _in_own_loop(bucket: Bucket, rate: ThrottleRate, calls: int) -> list[float]:
    return asyncio.run(_acquire_times(bucket, rate, calls))


@pytest.mark.services
async def test_two_processes_worth_of_clients_share_the_rate(bucket: Bucket) -> None:
    rate = ThrottleRate(interval_seconds=0.1)
    start = time.monotonic()
    # Two threads, each with its own event loop and Redis connection: as independent as
    # two worker processes, and each alone would go twice as fast as the rate allows.
    first, second = await asyncio.gather(
        asyncio.to_thread(_in_own_loop, bucket, rate, 5),
        asyncio.to_thread(_in_own_loop, bucket, rate, 5),
    )

    moments = first + second
    assert len(moments) == 10
    assert_within_rate(start, moments, 0.1)


@pytest.mark.services
async def test_concurrent_tasks_on_one_loop_share_the_rate(bucket: Bucket) -> None:
    rate = ThrottleRate(interval_seconds=0.05)
    start = time.monotonic()
    results = await asyncio.gather(*(_acquire_times(bucket, rate, 3) for _ in range(3)))
    moments = [moment for result in results for moment in result]
    assert_within_rate(start, moments, 0.05)


@pytest.mark.services
async def test_redis_burst_then_rate(bucket: Bucket) -> None:
    asked: list[float] = []

    async def note_sleep(seconds: float) -> None:
        asked.append(seconds)  # recorded, not slept: the next call comes right away

    client = bucket.client()
    rate = ThrottleRate(interval_seconds=10.0, burst=3)
    throttle = RedisThrottle(client, rate, key=bucket.key, sleep=note_sleep)
    try:
        for _ in range(5):
            await throttle.acquire()
    finally:
        await client.aclose()
    # Three tokens at once (no wait), then the 4th one interval later and the 5th two.
    # The bounds leave ten seconds for the machine to be slow.
    assert len(asked) == 2
    assert 0 < asked[0] <= 10.0
    assert 10.0 < asked[1] <= 20.0


@pytest.mark.services
async def test_redis_state_expires_and_is_an_exact_integer(bucket: Bucket) -> None:
    client = bucket.client()
    try:
        await RedisThrottle(client, ThrottleRate(interval_seconds=2.0), key=bucket.key).acquire()
        ttl_ms = await client.pttl(bucket.key)
        stored = await client.get(bucket.key)
        seconds, micros = await client.time()
    finally:
        await client.aclose()
    assert 0 < ttl_ms <= 3000  # the interval plus a second of slack, then gone
    assert stored is not None
    assert stored.isdigit()  # not "1.7e+15": microseconds survive the round trip
    assert abs(int(stored) - (seconds * 1_000_000 + micros) - 2_000_000) < 1_000_000


@pytest.mark.services
async def test_from_url_owns_and_closes_its_client(bucket: Bucket) -> None:
    rate = ThrottleRate(interval_seconds=0.01)
    throttle = RedisThrottle.from_url(bucket.url, rate, key=bucket.key)
    await throttle.acquire()
    await throttle.aclose()

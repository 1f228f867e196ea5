"""A failed task's retries wait the delays SmartRetryMiddleware planned, on every broker.

taskiq-redis's stream broker and taskiq's in-memory broker ignore the `delay` label, so
all retries used to run within a fraction of a second; a 20-second database outage then
used them all up. Each attempt records the monotonic time it started; the gap before a
retry must be at least the delay planned for it (a lower bound, not a speed).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cpsync.queue import LazyBroker, kick, make_broker
from cpsync.settings import Settings
from tests.conftest import REPO_ROOT, delete_rabbitmq_queues
from tests.retry_tasks import FLAKY, attempts, register

FAILURES = 2
# Small, so the test is quick: SmartRetryMiddleware multiplies it by the retry's number
# and adds up to a second of jitter.
RETRY_DELAY_SECONDS = "0.3"


def assert_waited(path: Path) -> None:
    seen = attempts(path)
    assert len(seen) == FAILURES + 1, seen
    assert seen[0][1] == 0.0  # the first run is not delayed
    for (before, _), (after, planned) in itertools.pairwise(seen):
        assert planned >= float(RETRY_DELAY_SECONDS)
        assert after - before >= planned, seen


async def wait_for_attempts(path: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(attempts(path)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def test_in_memory_retries_wait_their_delay(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {"broker_url": "memory://", "queue_retry_delay_seconds": RETRY_DELAY_SECONDS}
    )
    broker = make_broker(settings)
    register(broker)
    await broker.startup()
    path = tmp_path / "attempts"
    try:
        await kick(broker, FLAKY, str(path), FAILURES)
        await wait_for_attempts(path, FAILURES + 1, 60)
    finally:
        await broker.shutdown()
    assert_waited(path)


async def test_shutdown_drops_an_in_process_retry_still_waiting(tmp_path: Path) -> None:
    """In-process work ends with the process: a retry an hour away does not hold it up."""
    settings = Settings.model_validate(
        {"broker_url": "memory://", "queue_retry_delay_seconds": 3600}
    )
    broker = LazyBroker(make_broker(settings))
    register(broker.broker)
    await broker.ensure_started()
    path = tmp_path / "attempts"
    await broker.kick(FLAKY, str(path), FAILURES)
    await wait_for_attempts(path, 1, 60)
    deadline = time.monotonic() + 60
    while not getattr(broker.broker, "_waiting", None) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # until the failed attempt has asked for its retry
    # Far shorter than the retry's delay, far longer than dropping it takes.
    await asyncio.wait_for(broker.shutdown(finish_seconds=3600), 60)
    assert len(attempts(path)) == 1


@pytest.fixture(params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest, queue_name: str) -> Iterator[str]:
    url: str = request.getfixturevalue(f"{request.param}_url")
    yield url
    if url.startswith("amqp"):
        asyncio.run(delete_rabbitmq_queues(url, queue_name))


@pytest.fixture
def worker(broker_url: str, queue_name: str) -> Iterator[None]:
    env = dict(
        os.environ,
        CPSYNC_BROKER_URL=broker_url,
        CPSYNC_QUEUE_NAME=queue_name,
        CPSYNC_QUEUE_RETRY_DELAY_SECONDS=RETRY_DELAY_SECONDS,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "taskiq", "worker", "tests.retry_tasks:broker", "--workers", "1"],
        cwd=REPO_ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


async def test_worker_retries_wait_their_delay(
    broker_url: str, queue_name: str, worker: None, tmp_path: Path
) -> None:
    settings = Settings.model_validate({"broker_url": broker_url, "queue_name": queue_name})
    broker = make_broker(settings)
    await broker.startup()
    path = tmp_path / "attempts"
    try:
        await kick(broker, FLAKY, str(path), FAILURES)
    finally:
        await broker.shutdown()
    await wait_for_attempts(path, FAILURES + 1, 90)
    assert_waited(path)

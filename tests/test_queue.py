"""The task queue on the machine's Redis and RabbitMQ, with real worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cpsync.queue import BrokerConfigError, kick, make_broker
from cpsync.settings import Settings
from tests.conftest import REPO_ROOT, unavailable

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
REDIS_URL = "redis://127.0.0.1:6379/0"


def reachable(url: str) -> bool:
    if url.startswith("redis"):
        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError:
            return False
        return True
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture(params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest) -> str:
    url = REDIS_URL if request.param == "redis" else RABBITMQ_URL
    if not reachable(url):
        unavailable(f"{request.param} broker not reachable")
    return url


@pytest.fixture
def queue_name() -> str:
    """A queue of this test's own: leftovers of other runs never reach its workers."""
    return f"cpsync-test-{uuid.uuid4().hex[:10]}"


def settings_for(url: str, name: str) -> Settings:
    return Settings.model_validate(
        {"broker_url": url, "queue_name": name, "queue_redeliver_seconds": 3}
    )


class Worker:
    def __init__(self, url: str, name: str) -> None:
        env = dict(os.environ, CPSYNC_BROKER_URL=url, CPSYNC_QUEUE_REDELIVER_SECONDS="3")
        env["CPSYNC_QUEUE_NAME"] = name
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskiq",
                "worker",
                "tests.queue_tasks:broker",
                "--workers",
                "1",
                "--ack-type",
                "when_executed",
                "--shutdown-timeout",
                "2",
            ],
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill_hard(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill_hard()


@pytest.fixture
def workers(broker_url: str) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def lines(path: Path) -> list[str]:
    return path.read_text().split()[::2] if path.exists() else []


def wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


async def kick_all(
    url: str, name: str, path: Path, values: list[str], seconds: float = 0.0
) -> None:
    broker = make_broker(settings_for(url, name))
    await broker.startup()
    try:
        for value in values:
            await kick(broker, "test.record", str(path), value, seconds)
    finally:
        await broker.shutdown()


def test_tasks_reach_a_worker_process(
    broker_url: str, queue_name: str, workers: list[Worker], tmp_path: Path
) -> None:
    workers.append(Worker(broker_url, queue_name))
    out = tmp_path / "done"
    asyncio.run(kick_all(broker_url, queue_name, out, ["one", "two", "three"]))
    assert wait_for(lambda: len(lines(out)) == 3, 30), lines(out)
    assert sorted(lines(out)) == ["one", "three", "two"]


def test_task_of_a_killed_worker_runs_again_elsewhere(
    broker_url: str, queue_name: str, workers: list[Worker], tmp_path: Path
) -> None:
    first = Worker(broker_url, queue_name)
    workers.append(first)
    out = tmp_path / "done"
    started = Path(str(out) + ".started")
    asyncio.run(kick_all(broker_url, queue_name, out, ["slow"], seconds=2.0))
    assert wait_for(lambda: started.exists(), 30)
    first.kill_hard()  # mid-task: never acknowledged
    assert lines(out) == []
    workers.append(Worker(broker_url, queue_name))
    assert wait_for(lambda: lines(out) == ["slow"], 45), started.read_text()


def test_unknown_broker_scheme_is_refused() -> None:
    with pytest.raises(BrokerConfigError, match="kafka://"):
        make_broker(Settings.model_validate({"broker_url": "kafka://x"}))

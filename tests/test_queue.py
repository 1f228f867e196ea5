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

import aio_pika
import pytest
import redis
from taskiq import BrokerMessage, TaskiqMessage

from cpsync.queue import BrokerConfigError, kick, make_broker
from cpsync.settings import Settings
from tests.conftest import REPO_ROOT, delete_rabbitmq_queues
from tests.waiting import wait_until


@pytest.fixture(params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """The machine's Redis or RabbitMQ, from CPSYNC_TEST_REDIS_URL / CPSYNC_TEST_AMQP_URL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def broker_queue(broker_url: str, queue_name: str) -> Iterator[str]:
    """This test's queue on the broker; RabbitMQ's queues are deleted afterwards (Redis
    keys go with the run's namespace at the end of the session)."""
    yield queue_name
    if broker_url.startswith("amqp"):
        asyncio.run(delete_rabbitmq_queues(broker_url, queue_name))


# Small, so a task outlives it quickly and a killed worker's task comes back fast.
REDELIVER_SECONDS = 2.0


def settings_for(url: str, name: str) -> Settings:
    return Settings.model_validate(
        {"broker_url": url, "queue_name": name, "queue_redeliver_seconds": REDELIVER_SECONDS}
    )


class Worker:
    def __init__(
        self, url: str, name: str, cache_url: str = "memory://", log: Path | None = None
    ) -> None:
        env = dict(os.environ, CPSYNC_BROKER_URL=url, CPSYNC_CACHE_URL=cache_url)
        env["CPSYNC_QUEUE_REDELIVER_SECONDS"] = str(REDELIVER_SECONDS)
        env["CPSYNC_QUEUE_NAME"] = name
        stderr = log.open("w") if log else subprocess.DEVNULL
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
            stderr=stderr,
        )
        if log:
            stderr.close()  # type: ignore[union-attr]  # the worker holds its own copy

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
def workers(queue_name: str) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def lines(path: Path) -> list[str]:
    return path.read_text().split()[::2] if path.exists() else []


async def kick_all(
    url: str, name: str, path: Path, values: list[str], task: str = "test.record"
) -> None:
    broker = make_broker(settings_for(url, name))
    await broker.startup()
    try:
        for value in values:
            await kick(broker, task, str(path), value)
    finally:
        await broker.shutdown()


def test_tasks_reach_a_worker_process(
    broker_url: str, broker_queue: str, workers: list[Worker], tmp_path: Path
) -> None:
    queue_name = broker_queue
    workers.append(Worker(broker_url, queue_name))
    out = tmp_path / "done"
    asyncio.run(kick_all(broker_url, queue_name, out, ["one", "two", "three"]))
    assert wait_until(lambda: len(lines(out)) == 3, 30), lines(out)
    assert sorted(lines(out)) == ["one", "three", "two"]


def test_task_of_a_killed_worker_runs_again_elsewhere(
    broker_url: str, broker_queue: str, workers: list[Worker], tmp_path: Path
) -> None:
    queue_name = broker_queue
    first = Worker(broker_url, queue_name)
    workers.append(first)
    out = tmp_path / "done"
    started = Path(f"{out}.started")
    asyncio.run(kick_all(broker_url, queue_name, out, ["held"], task="test.hold"))
    assert wait_until(lambda: lines(started) == ["held"], 30)
    first.kill_hard()  # mid-task: never acknowledged
    workers.append(Worker(broker_url, queue_name))
    assert wait_until(lambda: lines(started) == ["held", "held"], 45), started.read_text()
    Path(f"{out}.release").touch()
    assert wait_until(lambda: lines(out) == ["held"], 30)


def test_a_task_running_longer_than_redelivery_runs_once(
    redis_url: str, queue_name: str, workers: list[Worker], tmp_path: Path
) -> None:
    """Two workers; the task runs three redelivery times before the test lets it end,
    and the idle worker, looking for unacknowledged messages every second, leaves it."""
    broker_queue = queue_name
    workers.extend(Worker(redis_url, broker_queue) for _ in range(2))
    out = tmp_path / "done"
    started = Path(f"{out}.started")
    asyncio.run(kick_all(redis_url, broker_queue, out, ["long"], task="test.hold"))
    assert wait_until(lambda: lines(started) == ["long"], 30)
    running_since = time.monotonic()
    probe = redis.Redis.from_url(redis_url)
    try:
        stream = f"{broker_queue}:tasks"
        # The condition under test is time itself: the task must outlive redelivery.
        while time.monotonic() - running_since < 3 * REDELIVER_SECONDS:
            time.sleep(0.1)
            (pending,) = probe.xpending_range(stream, broker_queue, "-", "+", 1)
            assert pending["times_delivered"] == 1  # never claimed by the idle worker
    finally:
        probe.close()
    Path(f"{out}.release").touch()
    assert wait_until(lambda: lines(out) == ["long"], 30)
    assert lines(started) == ["long"], started.read_text()


async def publish(url: str, name: str, message: BrokerMessage) -> None:
    broker = make_broker(settings_for(url, name))
    await broker.startup()
    try:
        await broker.kick(message)
    finally:
        await broker.shutdown()


async def ready_messages(url: str, name: str) -> int:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{name}.tasks", passive=True)
        return queue.declaration_result.message_count or 0
    finally:
        await connection.close()


@pytest.fixture
def amqp_queue(amqp_url: str, queue_name: str) -> Iterator[str]:
    yield queue_name
    asyncio.run(delete_rabbitmq_queues(amqp_url, queue_name))


def test_a_copy_delivered_while_the_task_runs_waits_and_is_dropped(
    amqp_url: str, redis_url: str, amqp_queue: str, workers: list[Worker], tmp_path: Path
) -> None:
    """RabbitMQ's consumer timeout closes the channel of a task unacknowledged for 30
    minutes and queues its message again, for another worker. The timeout is set for the
    whole server (3.10 has no per-queue one), so lowering it would cut every other user
    of this RabbitMQ short: the test publishes the very same message a second time
    instead, which is what the timeout does."""
    broker_queue = amqp_queue
    out = tmp_path / "done"
    started = Path(f"{out}.started")
    task = TaskiqMessage(
        task_id=uuid.uuid4().hex,
        task_name="test.hold",
        labels={},
        args=[str(out), "long"],
        kwargs={},
    )
    message = make_broker(settings_for(amqp_url, broker_queue)).formatter.dumps(task)
    logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
    workers.extend(Worker(amqp_url, broker_queue, redis_url, log) for log in logs)
    asyncio.run(publish(amqp_url, broker_queue, message))
    assert wait_until(lambda: lines(started) == ["long"], 30)
    asyncio.run(publish(amqp_url, broker_queue, message))
    assert wait_until(lambda: asyncio.run(ready_messages(amqp_url, broker_queue)) == 0, 30)
    copy_delivered = time.monotonic()
    # The condition under test is time itself: the run outlives its lease several times.
    while time.monotonic() - copy_delivered < 3 * REDELIVER_SECONDS:
        time.sleep(0.1)
        assert lines(started) == ["long"]
    Path(f"{out}.release").touch()
    assert wait_until(lambda: lines(out) == ["long"], 30)
    assert wait_until(lambda: any("queue.copy.dropped" in log.read_text() for log in logs), 30)
    for worker in workers:
        worker.stop()  # anything left unacknowledged would go back to the queue
    assert asyncio.run(ready_messages(amqp_url, broker_queue)) == 0
    assert lines(started) == ["long"]


def test_tasks_still_run_on_rabbitmq_when_the_lease_store_is_down(
    amqp_url: str, amqp_queue: str, workers: list[Worker], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    workers.append(Worker(amqp_url, amqp_queue, "redis://127.0.0.1:1/0", log))
    out = tmp_path / "done"
    asyncio.run(kick_all(amqp_url, amqp_queue, out, ["one", "two"]))
    assert wait_until(lambda: sorted(lines(out)) == ["one", "two"], 30)
    assert "queue.lease.unavailable" in log.read_text()


def test_unknown_broker_scheme_is_refused() -> None:
    with pytest.raises(BrokerConfigError, match="kafka://"):
        make_broker(Settings.model_validate({"broker_url": "kafka://x"}))

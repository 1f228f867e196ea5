"""A worker's Redis stream listener outlives a Redis outage.

If the listener raised on the lost connection, taskiq's receiver would stop and the
worker process with it, cancelling the tasks it was running. Here Redis (without
persistence, as in the fault trials) is killed and started again under a listener
waiting for work: a task kicked afterwards is still delivered to it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from taskiq import AckableMessage, BrokerMessage

from cpsync.cache import open_cache
from cpsync.locks import open_locks
from cpsync.queue import make_broker
from cpsync.settings import Settings
from tests.services import OwnRedis, own_redis

pytestmark = pytest.mark.services

DELIVERY_TIMEOUT = 120.0  # the listener's backoff on a loaded machine


@pytest.fixture
def redis_server() -> Iterator[OwnRedis]:
    with own_redis() as server:
        yield server


async def test_listener_reads_again_after_redis_came_back_empty(
    redis_server: OwnRedis, queue_name: str
) -> None:
    settings = Settings.model_validate({"broker_url": redis_server.url, "queue_name": queue_name})
    broker = make_broker(settings)
    await broker.startup()
    listener = broker.listen()
    try:
        delivered = asyncio.ensure_future(anext(listener))
        await asyncio.to_thread(redis_server.kill)
        await asyncio.to_thread(redis_server.start)
        body = uuid.uuid4().hex.encode()
        message = BrokerMessage(task_id=uuid.uuid4().hex, task_name="t", message=body, labels={})
        await broker.kick(message)

        received = await asyncio.wait_for(delivered, DELIVERY_TIMEOUT)
    finally:
        await listener.aclose()
        await broker.shutdown()

    assert isinstance(received, AckableMessage)
    assert received.data == body


async def test_pooled_connections_outlive_a_redis_restart(
    redis_server: OwnRedis, queue_name: str
) -> None:
    """After Redis restarts, every pooled connection is dead: the first command on each
    is tried again on a fresh connection instead of failing the task that sent it."""
    cache = open_cache(redis_server.url, queue_name)
    locks = open_locks(redis_server.url, queue_name)
    try:
        await cache.set("before", b"1", 60)
        assert await locks.acquire("a-lock", "first", 30)
        redis_server.kill()
        redis_server.start()
        assert await cache.get("before") is None  # a Redis without persistence came back empty
        await cache.set("after", b"2", 60)
        assert await cache.get("after") == b"2"
        assert await locks.acquire("a-lock", "second", 30)
    finally:
        await cache.close()
        await locks.close()

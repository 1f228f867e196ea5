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

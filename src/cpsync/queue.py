"""The task queue: a taskiq broker chosen by `CPSYNC_BROKER_URL`.

- `memory://` (embedded default): tasks run in this process, in the background.
- `redis://...`: Redis streams; a message is acknowledged only after its task ran, and a
  message left unacknowledged by a dead worker is claimed by another after
  `queue_redeliver_seconds`.
- `amqp://...`: RabbitMQ; unacknowledged messages return to the queue when a worker's
  connection drops. Delayed retries go through a named delay queue (without one,
  taskiq-aio-pika silently drops them; see stack.md).

Tasks are kicked by name (`kick(broker, "calendars.sync_user", 42)`), so a process can
enqueue onto any broker without importing the task functions bound to another. Every
task must be idempotent: redelivery after a crash runs it again.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio import Redis
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker, SmartRetryMiddleware
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

from cpsync.errors import CpsyncError
from cpsync.settings import Settings


class BrokerConfigError(CpsyncError):
    pass


def make_broker(settings: Settings) -> AsyncBroker:
    url = settings.broker_url
    broker: AsyncBroker
    if url.startswith("memory://"):
        broker = InMemoryBroker(await_inplace=False)
    elif url.startswith(("redis://", "rediss://")):
        broker = _redis_broker(url, settings)
    elif url.startswith(("amqp://", "amqps://")):
        broker = _rabbitmq_broker(url, settings.queue_name)
    else:
        scheme = url.split(":", 1)[0]
        raise BrokerConfigError(
            f"unsupported broker URL {scheme}://; use memory://, redis:// or amqp://"
        )
    return broker.with_middlewares(
        SmartRetryMiddleware(
            default_retry_count=settings.queue_max_retries,
            default_retry_label=True,
            default_delay=settings.queue_retry_delay_seconds,
            use_jitter=True,
            use_delay_exponent=True,
            max_delay_exponent=300,
        )
    )


class _ReclaimingStreamBroker(RedisStreamBroker):
    """Redis streams that also reclaim a dead worker's messages while the queue is idle.

    taskiq-redis runs XAUTOCLAIM only after a read that returned new messages, so the task
    of a worker killed mid-run waits for unrelated traffic before anyone retries it.
    """

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        async with Redis(connection_pool=self.connection_pool) as connection:
            while True:
                fetched: Any = await connection.xreadgroup(
                    self.consumer_group_name,
                    self.consumer_name,
                    {self.queue_name: ">"},
                    block=self.block,
                    noack=False,
                    count=self.count,
                )
                for _stream, messages in fetched or []:
                    for message in messages:
                        yield self._ackable(*message)
                _cursor, claimed, *_ = await connection.xautoclaim(
                    self.queue_name,
                    self.consumer_group_name,
                    self.consumer_name,
                    min_idle_time=self.idle_timeout,
                    count=self.unacknowledged_batch_size,
                )
                for message_id, fields in claimed:
                    if fields:  # an entry trimmed from the stream comes back empty
                        yield self._ackable(message_id, fields)

    def _ackable(self, message_id: bytes, fields: dict[bytes, bytes]) -> AckableMessage:
        ack = self._ack_generator(id=message_id.decode(), queue_name=self.queue_name)
        return AckableMessage(data=fields[b"data"], ack=ack)


def _redis_broker(url: str, settings: Settings) -> AsyncBroker:
    redeliver_ms = int(settings.queue_redeliver_seconds * 1000)
    return _ReclaimingStreamBroker(
        url,
        queue_name=f"{settings.queue_name}:tasks",
        consumer_group_name=settings.queue_name,
        idle_timeout=redeliver_ms,
        xread_block=1000,
        # redis-py's default socket timeout swallows cancellation (see stack.md).
        socket_timeout=None,
    )


def _rabbitmq_broker(url: str, name: str) -> AsyncBroker:
    from taskiq_aio_pika import AioPikaBroker
    from taskiq_aio_pika.exchange import Exchange
    from taskiq_aio_pika.queue import Queue, QueueType

    return AioPikaBroker(
        url,
        exchange=Exchange(name=name),
        task_queues=[Queue(name=f"{name}.tasks", type=QueueType.CLASSIC)],
        delay_queue=Queue(name=f"{name}.tasks.delayed", type=QueueType.CLASSIC),
        qos=4,
    )


async def kick(broker: AsyncBroker, task_name: str, *args: Any, **kwargs: Any) -> str:
    """Enqueue `task_name`; returns the task id."""
    kicker: AsyncKicker[Any, Any] = AsyncKicker(task_name=task_name, broker=broker, labels={})
    task = await kicker.kiq(*args, **kwargs)
    return str(task.task_id)

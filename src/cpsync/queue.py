"""The task queue: a taskiq broker chosen by `CPSYNC_BROKER_URL`.

- `memory://` (embedded default): tasks run in this process, in the background.
- `redis://...`: Redis streams; a message is acknowledged only after its task ran, and a
  message left unacknowledged by a dead worker is claimed by another after
  `queue_redeliver_seconds`. A running task keeps its claim alive however long it runs.
- `amqp://...`: RabbitMQ; unacknowledged messages return to the queue when a worker's
  connection drops. Delayed retries go through a named delay queue (without one,
  taskiq-aio-pika silently drops them; see stack.md).

Tasks are kicked by name (`kick(broker, "calendars.sync_user", 42)`), so a process can
enqueue onto any broker without importing the task functions bound to another. Every
task must be idempotent: redelivery after a crash runs it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker, SmartRetryMiddleware
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

from cpsync.errors import CpsyncError
from cpsync.settings import Settings

log = logging.getLogger(__name__)


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


# Claims a pending message again for the consumer that holds it, which resets its idle
# time; a message acknowledged meanwhile, or taken over by another worker, is left alone.
_KEEP_CLAIMED = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2]) == 0 then
  return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""


class _ReclaimingStreamBroker(RedisStreamBroker):
    """Redis streams where only a dead worker's messages are claimed by another.

    A message idle for `idle_timeout` is claimed by the next worker that looks. So that a
    long task is not delivered again while it still runs, the worker holding a message
    claims it again every third of that time until the message is acknowledged; a worker
    that dies (or whose event loop hangs) stops doing so, and its message goes idle.

    taskiq-redis runs XAUTOCLAIM only after a read that returned new messages, so the task
    of a worker killed mid-run would wait for unrelated traffic before anyone retried it:
    here every read is followed by a claim.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claims_kept: set[asyncio.Task[None]] = set()

    async def shutdown(self) -> None:
        for keeper in list(self._claims_kept):
            keeper.cancel()
        await super().shutdown()

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
        ident = message_id.decode()
        keeper = asyncio.create_task(self._keep_claimed(ident), name=f"queue.claim:{ident}")
        self._claims_kept.add(keeper)
        keeper.add_done_callback(self._claims_kept.discard)
        acknowledge = self._ack_generator(id=ident, queue_name=self.queue_name)

        async def ack() -> None:
            keeper.cancel()
            await acknowledge()

        return AckableMessage(data=fields[b"data"], ack=ack)

    async def _keep_claimed(self, message_id: str) -> None:
        args = [self.consumer_group_name, self.consumer_name, message_id]
        async with Redis(connection_pool=self.connection_pool) as connection:
            keep: Any = connection.register_script(_KEEP_CLAIMED)
            while True:
                await asyncio.sleep(self.idle_timeout / 3000)
                try:
                    if not await keep(keys=[self.queue_name], args=args):
                        return
                except (RedisError, OSError) as exc:
                    # Redis away for a moment: try again; the message only goes idle.
                    log.warning("queue.claim.failed message=%s error=%s", message_id, exc)


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

"""The task queue: a taskiq broker chosen by `CPSYNC_BROKER_URL`.

- `memory://` (embedded default): tasks run in this process, in the background.
- `redis://...`: Redis streams; a message is acknowledged only after its task ran, and a
  message left unacknowledged by a dead worker is claimed by another after
  `queue_redeliver_seconds`. A running task keeps its claim alive however long it runs.
  A delayed retry waits in a sorted set (scored by Redis's own clock) until it is due,
  then moves onto the stream: it survives the worker that scheduled it.
- `amqp://...`: RabbitMQ; unacknowledged messages return to the queue when a worker's
  connection drops. A message delivered again while it still runs (RabbitMQ's consumer
  timeout) waits for that run instead of running beside it. Delayed retries go through
  a named delay queue (without one, taskiq-aio-pika silently drops them; see stack.md).

Every broker honours the `delay` label SmartRetryMiddleware puts on a retry (taskiq's
own Redis and in-memory brokers would run it at once).

Tasks are kicked by name (`kick(broker, "calendars.sync_user", 42)`), so a process can
enqueue onto any broker without importing the task functions bound to another. Every
task must be idempotent: redelivery after a crash runs it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiormq.exceptions import AMQPError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import (
    AckableMessage,
    AsyncBroker,
    BrokerMessage,
    InMemoryBroker,
    SmartRetryMiddleware,
)
from taskiq.kicker import AsyncKicker
from taskiq.utils import maybe_awaitable
from taskiq_aio_pika import AioPikaBroker
from taskiq_redis import RedisStreamBroker

from cpsync.cache import Cache, open_cache
from cpsync.errors import CpsyncError
from cpsync.locks import Locks, new_owner, open_locks
from cpsync.redis_client import connection_options
from cpsync.settings import Settings

log = logging.getLogger(__name__)


class BrokerConfigError(CpsyncError):
    pass


class QueueUnavailableError(CpsyncError):
    status_code = 503


_UNAVAILABLE = "The task queue is unavailable; try again later."


class LazyBroker:
    """The process's broker, connected on first use: the site stays up (and /readyz says
    why) without a broker. A broker someone else starts (taskiq's worker) is passed in
    `started`; then shutting it down is theirs too."""

    def __init__(self, broker: AsyncBroker, *, started: bool = False) -> None:
        self.broker = broker
        self._started = started
        self._owned = not started
        self._starting = asyncio.Lock()

    @property
    def in_process(self) -> bool:
        """Whether kicked tasks run in this process (the embedded in-memory broker)."""
        return isinstance(self.broker, InMemoryBroker)

    async def ensure_started(self) -> None:
        async with self._starting:
            if not self._started:
                try:
                    await self.broker.startup()
                except Exception as exc:  # connection refused, auth, DNS: all mean "not now"
                    raise QueueUnavailableError(_UNAVAILABLE) from exc
                self._started = True

    async def kick(self, task_name: str, *args: Any) -> str:
        await self.ensure_started()
        return await kick(self.broker, task_name, *args)

    async def shutdown(self, finish_seconds: float = 10.0) -> None:
        """Let in-process tasks finish (briefly) before the resources they use close."""
        if isinstance(self.broker, _DelayingMemoryBroker):
            await self.broker.drop_waiting()
        if isinstance(self.broker, InMemoryBroker):
            await _finish_in_process(self.broker, finish_seconds)
        if self._started and self._owned:
            await self.broker.shutdown()

    async def wait_idle(self) -> None:
        """Wait until the in-process tasks, and those they kicked, are done (tests)."""
        if isinstance(self.broker, InMemoryBroker):
            # Finished tasks leave the set in a done-callback, so look at what still runs.
            while running := [task for task in self.broker._running_tasks if not task.done()]:
                await asyncio.gather(*running, return_exceptions=True)


Unsent = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _QueuedTask:
    name: str
    args: tuple[Any, ...]
    on_unsent: Unsent | None


class JobQueue:
    """The tasks one request (or command) asks for, kicked only after its commit.

    Routes `enqueue`; the session dependency calls `flush` after a successful commit and
    `discard` when the request failed, so a rolled-back change never starts work
    (Polar's JobQueueManager pattern).

    A kick that fails is tried once more (a Redis restarted since the last kick leaves
    a dead connection in the pool; the second try gets a new one). If that fails too,
    each task not sent runs its `on_unsent` (say, marking the job row it was to serve as
    failed: the row is committed already, and nothing would ever run it) and `flush`
    raises QueueUnavailableError: the request answers 503, not a job that never moves.
    """

    def __init__(self, broker: LazyBroker) -> None:
        self._broker = broker
        self._jobs: list[_QueuedTask] = []

    def enqueue(self, task_name: str, *args: Any, on_unsent: Unsent | None = None) -> None:
        self._jobs.append(_QueuedTask(task_name, args, on_unsent))

    async def flush(self) -> None:
        jobs, self._jobs = self._jobs, []
        for index, job in enumerate(jobs):
            try:
                await self._kick_twice(job)
            except QueueUnavailableError:
                await _give_up(jobs[index:])
                raise

    def discard(self) -> None:
        self._jobs.clear()

    async def _kick_twice(self, job: _QueuedTask) -> None:
        try:
            await self._broker.kick(job.name, *job.args)
            return
        except Exception as exc:  # any broker's connection trouble: one more try
            log.warning("queue.kick.retrying task=%s error=%r", job.name, exc)
        try:
            await self._broker.kick(job.name, *job.args)
        except QueueUnavailableError:
            raise
        except Exception as exc:
            log.error("queue.kick.failed task=%s error=%r", job.name, exc)
            raise QueueUnavailableError(_UNAVAILABLE) from exc


async def _give_up(jobs: Sequence[_QueuedTask]) -> None:
    for job in jobs:
        if job.on_unsent is None:
            continue
        try:
            await job.on_unsent()
        except Exception:
            # The database may be down as well: the request still answers 503.
            log.exception("queue.unsent.not_recorded task=%s", job.name)


async def _finish_in_process(broker: InMemoryBroker, seconds: float) -> None:
    try:
        await asyncio.wait_for(broker.wait_all(), seconds)
    except TimeoutError:
        running = list(broker._running_tasks)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def make_broker(settings: Settings) -> AsyncBroker:
    url = settings.broker_url
    broker: AsyncBroker
    if url.startswith("memory://"):
        broker = _DelayingMemoryBroker(await_inplace=False)
    elif url.startswith(("redis://", "rediss://")):
        broker = _redis_broker(url, settings)
    elif url.startswith(("amqp://", "amqps://")):
        broker = _rabbitmq_broker(url, settings)
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


def delay_of(labels: Mapping[str, Any]) -> float:
    """The seconds a message asks to wait before it runs (SmartRetryMiddleware's label)."""
    try:
        return max(0.0, float(labels.get("delay") or 0.0))
    except (TypeError, ValueError):
        return 0.0


class _DelayingMemoryBroker(InMemoryBroker):
    """In-process tasks; a delayed retry waits its delay before it runs.

    The wait is one of the broker's running tasks, so `wait_idle` waits for the retry;
    shutdown drops the waits at once (in-process work does not outlive the process)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: set[asyncio.Task[None]] = set()
        self._closing = False

    async def kick(self, message: BrokerMessage) -> None:
        delay = delay_of(message.labels)
        if not delay:
            await super().kick(message)
            return
        if self._closing:  # a task finishing during shutdown asked for a retry
            log.warning("queue.retries.dropped count=1 task=%s", message.task_name)
            return
        waiting = asyncio.create_task(self._kick_later(message, delay))
        for tasks in (self._running_tasks, self._waiting):
            tasks.add(waiting)
            waiting.add_done_callback(tasks.discard)

    async def drop_waiting(self) -> None:
        """Drop the retries waiting, and any asked for from now on (shutdown)."""
        self._closing = True
        dropped = [task for task in self._waiting if not task.done()]
        for task in dropped:
            task.cancel()
        await asyncio.gather(*dropped, return_exceptions=True)
        if dropped:
            log.warning("queue.retries.dropped count=%d", len(dropped))

    async def _kick_later(self, message: BrokerMessage, delay: float) -> None:
        await asyncio.sleep(delay)
        await super().kick(message)


# Both scripts read the time from Redis, so workers with skewed clocks agree on what is due.
# A member is a random 32-character tag followed by the message, so equal messages stay apart.
_DELAY = """
local now = redis.call('TIME')
local due = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], due, ARGV[2])
return due
"""

# Moves what is due onto the stream; one script, so two workers never move the same one.
_RELEASE_DUE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'data', string.sub(member, 33))
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""
_RELEASE_BATCH = 100
# Seconds between reads at most while Redis is away.
_LISTEN_BACKOFF_MAX = 8.0


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

    A message with a `delay` label waits in the sorted set `<stream>:delayed` until it is
    due; every read is preceded by moving what is due onto the stream, so a retry runs at
    most a read's block time (a second) after its delay.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claims_kept: set[asyncio.Task[None]] = set()
        self.delayed_name = f"{self.queue_name}:delayed"

    async def kick(self, message: BrokerMessage) -> None:
        delay = delay_of(message.labels)
        if not delay:
            await super().kick(message)
            return
        member = uuid.uuid4().hex.encode() + message.message
        async with Redis(connection_pool=self.connection_pool) as connection:
            await connection.eval(_DELAY, 1, self.delayed_name, int(delay * 1000), member)

    async def shutdown(self) -> None:
        for keeper in list(self._claims_kept):
            keeper.cancel()
        await super().shutdown()

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Read until the worker stops. Redis going away does not end it: an error here
        would stop taskiq's receiver and the process, cancelling the tasks still running
        (which need no broker until their ack). Reads start again with backoff; a Redis
        back without its data (no persistence) gets the stream and group declared again."""
        failures = 0
        async with Redis(connection_pool=self.connection_pool) as connection:
            while True:
                try:
                    fetched = await self._fetch(connection)
                except (RedisError, OSError) as exc:
                    failures += 1
                    if failures == 1:
                        log.warning("queue.listen.unavailable error=%r", exc)
                    await asyncio.sleep(min(_LISTEN_BACKOFF_MAX, 0.5 * 2 ** min(failures, 5)))
                    await self._declare_group_again(connection)
                    continue
                if failures:
                    log.warning("queue.listen.recovered attempts=%d", failures)
                    failures = 0
                for message_id, fields in fetched:
                    yield self._ackable(message_id, fields)

    async def _declare_group_again(self, connection: Redis) -> None:
        """A Redis that lost the group lost the stream too: what is on it now was kicked
        since, so the group reads it from the start (not from its end, taskiq's default)."""
        with contextlib.suppress(RedisError, OSError):  # still away, or the group exists
            await connection.xgroup_create(
                self.queue_name, self.consumer_group_name, id="0", mkstream=True
            )

    async def _fetch(self, connection: Redis) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Due retries moved onto the stream, then new messages, then those a dead
        worker left idle."""
        await connection.eval(_RELEASE_DUE, 2, self.delayed_name, self.queue_name, _RELEASE_BATCH)
        fetched: Any = await connection.xreadgroup(
            self.consumer_group_name,
            self.consumer_name,
            {self.queue_name: ">"},
            block=self.block,
            noack=False,
            count=self.count,
        )
        messages = [message for _stream, read in fetched or [] for message in read]
        _cursor, claimed, *_ = await connection.xautoclaim(
            self.queue_name,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout,
            count=self.unacknowledged_batch_size,
        )
        # An entry trimmed from the stream comes back empty.
        return [*messages, *((ident, fields) for ident, fields in claimed if fields)]

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
        # One at a time, when the worker can start it: a message read into a batch but not
        # yet handed to the worker has no claim kept alive and would be taken by another.
        xread_count=1,
        **connection_options(),
    )


def _rabbitmq_broker(url: str, settings: Settings) -> AsyncBroker:
    from taskiq_aio_pika.exchange import Exchange
    from taskiq_aio_pika.queue import Queue, QueueType

    name = settings.queue_name
    return _LeasedPikaBroker(
        url,
        leases=_DeliveryLeases(
            open_locks(settings.cache_url, name),
            open_cache(settings.cache_url, name),
            settings.queue_redeliver_seconds,
        ),
        exchange=Exchange(name=name),
        task_queues=[Queue(name=f"{name}.tasks", type=QueueType.CLASSIC)],
        delay_queue=Queue(name=f"{name}.tasks.delayed", type=QueueType.CLASSIC),
        qos=4,
    )


# A message's copy can still be waiting in the queue long after its run finished.
_FINISHED_SECONDS = 24 * 3600.0


class _DeliveryLeases:
    """At most one run per message, across the workers that share the deployment's Redis.

    A delivery runs under a lease named after the message's bytes, renewed while it
    runs. A copy of the message delivered meanwhile waits: when the lease is released the
    run has finished and the copy is dropped; when it expires the worker died and the
    copy runs. A retry is a new message (its retry count differs), so it is not a copy.
    """

    def __init__(self, locks: Locks, flags: Cache, ttl_seconds: float) -> None:
        self._locks = locks
        self._flags = flags
        self._ttl = ttl_seconds

    async def admit(self, message: AckableMessage) -> AckableMessage | None:
        """Wait until `message` may run; None (and acknowledged) if it already ran."""
        digest = hashlib.sha256(message.data).hexdigest()
        lease, finished = f"queue:running:{digest}", f"queue:finished:{digest}"
        owner = new_owner()
        while not await self._locks.acquire(lease, owner, self._ttl):
            await asyncio.sleep(self._ttl / 3)  # the run it copies is alive: check again
        if await self._flags.get(finished) is not None:
            await self._locks.release(lease, owner)
            await _ack_if_possible(message)
            log.info("queue.copy.dropped message=%s", digest)
            return None
        renewing = asyncio.create_task(self._renew(lease, owner), name=f"queue.lease:{digest}")

        async def ack() -> None:
            renewing.cancel()
            try:
                await self._flags.set(finished, b"1", _FINISHED_SECONDS)
                await self._locks.release(lease, owner)
            finally:
                await _ack_if_possible(message)

        return AckableMessage(data=message.data, ack=ack)

    async def _renew(self, lease: str, owner: str) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            if not await self._locks.extend(lease, owner, self._ttl):
                log.warning("queue.lease.lost lease=%s", lease)  # this worker stalled
                return

    async def close(self) -> None:
        await self._locks.close()
        await self._flags.close()


async def _ack_if_possible(message: AckableMessage) -> None:
    try:
        await maybe_awaitable(message.ack())
    except (AMQPError, RuntimeError) as exc:
        # RabbitMQ closed the channel (consumer timeout): the message went back to the
        # queue, and its copy will find the run finished.
        log.warning("queue.ack.failed error=%r", exc)


class _LeasedPikaBroker(AioPikaBroker):
    """RabbitMQ, where a message delivered again while it still runs waits for that run.

    RabbitMQ gives up on a delivery left unacknowledged for `consumer_timeout` (30 min by
    default, set for the whole server: RabbitMQ 3.10 has no per-queue `x-consumer-timeout`,
    which came with 3.12) by closing the channel and queueing the message again, so a long
    task would run a second time beside the first. `_DeliveryLeases` keeps the copy
    waiting; a dead worker's lease expires after `queue_redeliver_seconds`.
    """

    def __init__(self, *args: Any, leases: _DeliveryLeases, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._leases = leases
        self._admissions: set[asyncio.Task[None]] = set()

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        admitted: asyncio.Queue[AckableMessage] = asyncio.Queue()
        delivering = asyncio.create_task(self._admit_each(admitted))
        try:
            while True:
                taking = asyncio.ensure_future(admitted.get())
                await asyncio.wait({taking, delivering}, return_when=asyncio.FIRST_COMPLETED)
                if not taking.done():
                    taking.cancel()
                    delivering.result()  # the deliveries ended: raise what ended them
                    return
                yield taking.result()
        finally:
            delivering.cancel()
            for admission in list(self._admissions):
                admission.cancel()

    async def _admit_each(self, admitted: asyncio.Queue[AckableMessage]) -> None:
        async def admit(message: AckableMessage) -> None:
            runnable: AckableMessage | None
            try:
                runnable = await self._leases.admit(message)
            except Exception:
                # Without the shared lease the task still runs: a copy at worst, never lost.
                log.exception("queue.lease.unavailable")
                runnable = message
            if runnable is not None:
                await admitted.put(runnable)

        async for message in super().listen():
            admission = asyncio.create_task(admit(message))
            self._admissions.add(admission)
            admission.add_done_callback(self._admissions.discard)

    async def shutdown(self) -> None:
        await super().shutdown()
        await self._leases.close()


async def kick(broker: AsyncBroker, task_name: str, *args: Any, **kwargs: Any) -> str:
    """Enqueue `task_name`; returns the task id."""
    kicker: AsyncKicker[Any, Any] = AsyncKicker(task_name=task_name, broker=broker, labels={})
    task = await kicker.kiq(*args, **kwargs)
    return str(task.task_id)

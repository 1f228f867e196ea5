"""The background side of every process: task registration, the worker and the scheduler.

- `register_tasks(broker, resources)`: every domain's named tasks on one broker. The
  app does it too, so the embedded in-memory broker runs them in the web process.
- `worker_broker()`: the broker factory `cpsync worker` hands to taskiq's worker
  (`taskiq worker cpsync.worker:worker_broker`): settings are read here, when the worker
  starts, and the process's resources are opened once at worker startup.
- `run_scheduler(settings)`: `cpsync scheduler`, the one job list of `cpsync.scheduler`.
  A dependency away at start (the database the schema is brought up to date in) is
  waited for like an outage while it runs: the scheduler never exits on one.

Each worker process and each scheduler publishes its heartbeat (`cpsync.heartbeats`)
while it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from taskiq import AsyncBroker, TaskiqEvents, TaskiqState

from cpsync.calendars import tasks as calendar_tasks
from cpsync.clock import Clock, utc_now
from cpsync.contests import tasks as contest_tasks
from cpsync.heartbeats import WORKER, Heartbeats
from cpsync.outages import Outage, is_outage
from cpsync.queue import make_broker
from cpsync.resources import Resources, open_resources
from cpsync.scheduler import Sleep, process_scheduler
from cpsync.settings import Settings
from cpsync.students import tasks as student_tasks

log = logging.getLogger(__name__)


def register_tasks(broker: AsyncBroker, resources: Callable[[], Resources]) -> None:
    contest_tasks.register(broker, resources)
    calendar_tasks.register(broker, resources)
    student_tasks.register(broker, resources)


@asynccontextmanager
async def open_process(
    settings: Settings, *, clock: Clock = utc_now, migrate: bool = True
) -> AsyncIterator[Resources]:
    """The process's resources with every task registered on its broker, so work a
    command or request enqueues runs here when the broker is the in-memory one."""
    async with open_resources(settings, clock=clock, migrate=migrate) as resources:
        register_tasks(resources.broker.broker, lambda: resources)
        if resources.broker.in_process:
            await resources.broker.ensure_started()
        yield resources


def worker_broker(settings: Settings | None = None) -> AsyncBroker:
    """A taskiq broker factory: the worker's broker, its tasks and, between the worker's
    startup and shutdown, the process's resources."""
    config = settings or Settings()
    broker = make_broker(config)
    stack = AsyncExitStack()
    opened: list[Resources] = []

    async def startup(_state: TaskiqState) -> None:
        resources = await stack.enter_async_context(open_resources(config, broker=broker))
        opened.append(resources)
        heartbeats = Heartbeats(resources.cache, resources.clock, config.heartbeat_seconds)
        await stack.enter_async_context(heartbeats.beating(WORKER))

    async def shutdown(_state: TaskiqState) -> None:
        opened.clear()
        await stack.aclose()

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, startup)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, shutdown)
    register_tasks(broker, lambda: opened[0])
    return broker


async def run_scheduler(
    settings: Settings, *, clock: Clock = utc_now, sleep: Sleep = asyncio.sleep
) -> None:
    """Run the scheduler until cancelled, enqueueing onto the configured broker (connected
    when the first occurrence fires)."""
    async with _opened_when_reachable(settings, clock, sleep) as resources:
        await process_scheduler(resources, sleep=sleep).run_forever()


@asynccontextmanager
async def _opened_when_reachable(
    settings: Settings, clock: Clock, sleep: Sleep
) -> AsyncIterator[Resources]:
    outage = Outage(
        log,
        "scheduler",
        base_seconds=settings.scheduler_tick_seconds,
        max_seconds=settings.scheduler_backoff_max_seconds,
    )
    async with AsyncExitStack() as stack:
        while True:
            try:
                # With tasks registered: on the in-memory broker what it fires runs here.
                resources = await stack.enter_async_context(open_process(settings, clock=clock))
            except Exception as error:
                if not is_outage(error):
                    raise
                await sleep(outage.failed("open", error))
            else:
                break
        outage.recovered()
        yield resources

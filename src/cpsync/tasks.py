"""Every queue task, on one broker: `taskiq worker cpsync.tasks:broker`.

Importing this module builds the broker from the environment's settings and registers
every domain's tasks on it, so a worker sees them all. `run_scheduler` is the scheduler
process: it only enqueues, and fires each occurrence once however many run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from taskiq import TaskiqEvents, TaskiqState

from cpsync.calendars import tasks as calendar_tasks
from cpsync.clock import Clock, utc_now
from cpsync.db import open_database
from cpsync.locks import open_locks
from cpsync.queue import make_broker
from cpsync.scheduler import ScheduledJob, Scheduler, record_faults
from cpsync.settings import Settings
from cpsync.students import tasks as student_tasks

settings = Settings()
broker = make_broker(settings)
pool = calendar_tasks.ResourcePool(settings, broker)
calendar_tasks.register(broker, pool)


async def _close_pool(_state: TaskiqState) -> None:
    await pool.close()


broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, _close_pool)


async def run_scheduler(
    config: Settings, *, clock: Clock = utc_now, tick_seconds: float = 5.0
) -> None:
    """Run the scheduler until cancelled, enqueueing onto the configured broker."""
    target = make_broker(config)
    await target.startup()
    locks = open_locks(config.cache_url, config.queue_name)
    db = await open_database(config)
    fixed: Sequence[ScheduledJob] = calendar_tasks.scheduled_jobs(target, config)

    async def source() -> Sequence[ScheduledJob]:
        # Coaches edit their sync schedules in the app: read them again on every tick.
        return [*fixed, *await student_tasks.student_jobs(db, student_tasks.kick_sync(target))]

    try:
        faults = record_faults(db)
        scheduler = Scheduler(locks, clock, source, tick_seconds=tick_seconds, on_fault=faults)
        await scheduler.run_forever()
    finally:
        await db.dispose()
        await locks.close()
        await target.shutdown()


def main() -> None:  # pragma: no cover - the `cpsync scheduler` command wraps this
    asyncio.run(run_scheduler(Settings()))


if __name__ == "__main__":  # pragma: no cover
    main()

from cpsync.students import worker as _students_worker  # noqa: E402, F401 - registers students.sync

"""Queue entry points of student tracking (thin, idempotent), and its scheduled jobs.

- `students.sync(coach_id, student_ids, trigger)`: one sync run; a request while the same
  scope runs folds into one more run after it (shared locks, so across processes);
  per-student locks and the reminder claims make a duplicated run harmless.
- `students.import(coach_id, job_id)`: run a CSV import job kept in the cache.
- `student_jobs(db, kick_sync(broker))`: the scheduler's jobs, one per coach with students, on the
  cron stored in `student_settings` (read on every tick, so an edit takes effect without
  a restart), evaluated in the coach's zone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from taskiq import AsyncBroker

from cpsync.cron import ScheduledJob
from cpsync.db import Database
from cpsync.locks import run_coalesced
from cpsync.queue import LazyBroker
from cpsync.resources import Resources
from cpsync.students.imports import CsvImporter, ImportJobs, Stored
from cpsync.students.models import DEFAULT_SYNC_CRON, Student, StudentSettings
from cpsync.students.runtime import IMPORT, SYNC, StudentsRuntime, sync_scope
from cpsync.students.schedule import ZonedCronJob

log = logging.getLogger(__name__)
# How often a task waiting behind a run of the same scope checks whether it may run.
WAIT_POLL_SECONDS = 1.0


async def sync(
    resources: Resources, coach_id: int | None, student_ids: list[int] | None, trigger: str
) -> int:
    """Run the sync, or leave it to the run of the same scope going now; the runs made.

    A task delivered again after its worker died finds the scope's lock still held by
    the dead run: it waits for the lock to lapse (`students_sync_lock_seconds`), then
    runs, closing the row the dead run left `running`.
    """
    service = StudentsRuntime(resources).sync_service()
    scope = sync_scope(coach_id, sorted(student_ids) if student_ids is not None else None)

    async def work() -> None:
        await service.sync(coach_id=coach_id, student_ids=student_ids, trigger=trigger, scope=scope)

    ttl = resources.settings.students_sync_lock_seconds
    locks, flags = resources.locks, resources.cache
    return await run_coalesced(
        locks, flags, scope, work, ttl, wait_poll_seconds=min(ttl / 3, WAIT_POLL_SECONDS)
    )


async def run_import(resources: Resources, coach_id: int, job_id: str) -> None:
    runtime = StudentsRuntime(resources)
    jobs = ImportJobs(resources.cache, resources.clock)
    job = await jobs.get(coach_id, job_id)
    if job is None:  # expired from the cache before a worker got to it
        log.warning("students.import.missing job=%s", job_id)
        return

    async def after_import(coach: int, stored: Stored) -> None:
        await runtime.forget_stats(stored.updated_ids)
        if stored.resync_ids:
            await resources.broker.kick(SYNC, coach, sorted(stored.resync_ids), "import")

    importer = CsvImporter(
        resources.db,
        runtime.client,
        jobs,
        resources.clock,
        interval_seconds=runtime.config.interval_seconds,
        after_import=after_import,
    )
    await importer.run(job)


def register(broker: AsyncBroker, resources: Callable[[], Resources]) -> None:
    """Bind the task names on `broker`; each task runs on the process's resources."""

    @broker.task(task_name=SYNC)
    async def sync_task(
        coach_id: int | None = None,
        student_ids: list[int] | None = None,
        trigger: str = "queue",
    ) -> int:
        return await sync(resources(), coach_id, student_ids, trigger)

    @broker.task(task_name=IMPORT)
    async def import_task(coach_id: int, job_id: str) -> None:
        await run_import(resources(), coach_id, job_id)


FireFor = Callable[[int], Callable[[], Awaitable[object]]]


async def student_jobs(db: Database, fire_for: FireFor) -> list[ScheduledJob]:
    """One job per coach who has students (default: daily at 03:00 UTC); `fire_for(coach)`
    makes what an occurrence does (`kick_sync`: enqueue `students.sync` for the coach)."""
    async with db.session() as session:
        coaches = set((await session.scalars(select(Student.coach_id).distinct())).all())
        stored = {row.coach_id: row for row in await session.scalars(select(StudentSettings))}
    jobs: list[ScheduledJob] = []
    for coach_id in sorted(coaches):
        row = stored.get(coach_id)
        cron = row.sync_cron if row is not None else DEFAULT_SYNC_CRON
        zone = row.timezone if row is not None else "UTC"
        name = f"students.sync:{coach_id}"
        jobs.append(ZonedCronJob(name, fire_for(coach_id), cron=cron, zone=zone))
    return jobs


def kick_sync(broker: LazyBroker) -> FireFor:
    def fire_for(coach_id: int) -> Callable[[], Awaitable[object]]:
        async def fire() -> str:
            return await broker.kick(SYNC, coach_id, None, "schedule")

        return fire

    return fire_for

"""Queue entry points of student tracking (thin, idempotent), and its scheduled jobs.

- `students.sync(coach_id, student_ids, trigger)`: one sync run; per-student locks and
  the reminder claims make a duplicated or overlapping run harmless.
- `student_jobs(db, broker, clock)`: the scheduler's jobs source, one job per coach with
  students, on the cron stored in `student_settings` (read on every tick, so an edit
  takes effect without a restart), evaluated in the coach's zone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from sqlalchemy import select
from taskiq import AsyncBroker

from cpsync.cache import open_cache
from cpsync.clock import Clock, utc_now
from cpsync.db import Database, open_database
from cpsync.http import HttpClient
from cpsync.queue import kick
from cpsync.scheduler import ScheduledJob
from cpsync.settings import Settings
from cpsync.students.models import DEFAULT_SYNC_CRON, Student, StudentSettings
from cpsync.students.runtime import StudentsRuntime
from cpsync.students.schedule import ZonedCronJob

SYNC = "students.sync"


class StudentsPool:
    """The worker process's runtime: opened on first use, closed at shutdown."""

    def __init__(self, settings: Settings, clock: Clock = utc_now) -> None:
        self._settings = settings
        self._clock = clock
        self._runtime: StudentsRuntime | None = None
        self._closers: list[Callable[[], Awaitable[object]]] = []
        self._opening = asyncio.Lock()

    async def get(self) -> StudentsRuntime:
        async with self._opening:
            if self._runtime is None:
                db = await open_database(self._settings)
                http = HttpClient(self._settings)
                cache = open_cache(self._settings.cache_url, self._settings.queue_name)
                self._runtime = StudentsRuntime(self._settings, db, http, cache, self._clock)
                self._closers = [self._runtime.aclose, http.aclose, cache.close, db.dispose]
            return self._runtime

    async def close(self) -> None:
        closers, self._closers, self._runtime = self._closers, [], None
        for close in closers:
            await close()


def register(broker: AsyncBroker, pool: StudentsPool) -> None:
    @broker.task(task_name=SYNC)
    async def sync_task(
        coach_id: int | None = None,
        student_ids: list[int] | None = None,
        trigger: str = "queue",
    ) -> dict[str, int]:
        runtime = await pool.get()
        report = await runtime.sync(coach_id=coach_id, student_ids=student_ids, trigger=trigger)
        return asdict(report.counts)


FireFor = Callable[[int], Callable[[], Awaitable[object]]]


async def student_jobs(db: Database, fire_for: FireFor) -> list[ScheduledJob]:
    """One job per coach who has students (default: daily at 03:00 UTC).

    `fire_for(coach_id)` makes what an occurrence does: kick the queue task (scheduler
    process) or start an in-process sync (the embedded web app). Both name their jobs
    alike, so with shared locks only one of them fires a given occurrence.
    """
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


def kick_sync(broker: AsyncBroker) -> FireFor:
    """For the scheduler process: an occurrence enqueues `students.sync` for the coach."""

    def fire_for(coach_id: int) -> Callable[[], Awaitable[object]]:
        async def fire() -> str:
            return await kick(broker, SYNC, coach_id, None, "schedule")

        return fire

    return fire_for

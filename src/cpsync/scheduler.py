"""Fires periodic jobs exactly once per deployment, however many schedulers run.

Each occurrence of a job has a name (`job:2026-11-22T03:00:00+00:00`); a scheduler fires
an occurrence only if it wins the lock of that name, so two scheduler processes (or a
restarted one) never fire the same occurrence twice and no leader election is needed.
Schedules are read again on every tick, so a cron expression edited in the database
takes effect without a restart. An occurrence missed by more than the grace period
(the scheduler was down) is skipped, not replayed.

One job's trouble is that job's alone: a schedule that cannot be evaluated (a stored cron
that never runs) or an occurrence whose firing raises is logged, handed to `on_fault`
(which records it where an admin sees it) and skipped; the other jobs keep firing and
the loop keeps running. A schedule fault is reported once a day while it lasts, not on
every tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cpsync.accounts import tasks as account_tasks
from cpsync.calendars import tasks as calendar_tasks
from cpsync.clock import Clock
from cpsync.contests import tasks as contest_tasks
from cpsync.cron import ScheduledJob
from cpsync.db import Database
from cpsync.jobs import JobState, finish_job, start_job
from cpsync.locks import Locks, new_owner
from cpsync.resources import Resources
from cpsync.students import tasks as student_tasks

log = logging.getLogger(__name__)

FAULT_REPORT_SECONDS = 24 * 3600.0


JobSource = Callable[[], Awaitable[Sequence[ScheduledJob]]]


def all_jobs(resources: Resources) -> JobSource:
    """Every domain's periodic jobs, the one list the embedded server and `cpsync
    scheduler` both run. Each occurrence only enqueues a task. The coaches' sync
    schedules are read again on every tick: they edit them in the app."""
    fixed = [
        *contest_tasks.scheduled_jobs(resources.broker, resources.settings),
        *calendar_tasks.scheduled_jobs(resources.broker, resources.settings),
        *account_tasks.scheduled_jobs(resources),
    ]

    coach_syncs = student_tasks.kick_sync(resources.broker)

    async def source() -> Sequence[ScheduledJob]:
        return [*fixed, *await student_tasks.student_jobs(resources.db, coach_syncs)]

    return source


def process_scheduler(resources: Resources, *, tick_seconds: float = 5.0) -> Scheduler:
    """The process's one scheduler loop over `all_jobs`, faults recorded for /admin."""
    on_fault = record_faults(resources.db)
    source = all_jobs(resources)
    clock = resources.clock
    return Scheduler(resources.locks, clock, source, tick_seconds=tick_seconds, on_fault=on_fault)


@dataclass(frozen=True)
class JobFault:
    """One job skipped: its schedule could not be evaluated, or firing it raised."""

    job: str
    stage: str  # "schedule" or "fire"
    message: str
    at: datetime


FaultHook = Callable[[JobFault], Awaitable[object]]


def record_faults(db: Database) -> FaultHook:
    """Faults as failed rows in the `jobs` table, which the admin page lists."""

    async def record(fault: JobFault) -> None:
        job_id = await start_job(db, "scheduler", fault.at)
        summary = f"{fault.job} skipped: {fault.stage} failed: {fault.message}"
        await finish_job(db, job_id, JobState.FAILED, summary, fault.at)

    return record


class Scheduler:
    def __init__(
        self,
        locks: Locks,
        clock: Clock,
        jobs: JobSource,
        *,
        tick_seconds: float = 5.0,
        grace: timedelta = timedelta(minutes=10),
        on_fault: FaultHook | None = None,
    ) -> None:
        self._locks = locks
        self._clock = clock
        self._jobs = jobs
        self._tick = tick_seconds
        self._grace = grace
        self._on_fault = on_fault
        self._owner = new_owner()

    async def tick(self) -> list[str]:
        """Fire every job whose latest occurrence is due and unclaimed; return what fired."""
        now = self._clock()
        fired = []
        for job in await self._jobs():
            try:
                occurrence = job.latest_occurrence(now)
            except Exception as error:
                # The same broken schedule fails on every tick: report it once a day.
                claim = f"fault:{job.name}:{error}"
                if await self._locks.acquire(claim, self._owner, FAULT_REPORT_SECONDS):
                    await self._report(JobFault(job.name, "schedule", str(error), now))
                continue
            if now - occurrence > self._grace:
                continue
            claim = f"fire:{job.name}:{occurrence.isoformat()}"
            # Held for long after the grace period, so a late scheduler cannot claim it again.
            if await self._locks.acquire(claim, self._owner, 2 * self._grace.total_seconds()):
                fired.append(claim)
                try:
                    await job.fire()
                except Exception as error:
                    await self._report(JobFault(job.name, "fire", repr(error), now))
        return fired

    async def _report(self, fault: JobFault) -> None:
        log.error(
            "scheduler.job.failed job=%s stage=%s error=%s", fault.job, fault.stage, fault.message
        )
        if self._on_fault is None:
            return
        try:
            await self._on_fault(fault)
        except Exception:
            log.exception("scheduler.fault.unrecorded job=%s", fault.job)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                # The job source itself failed (database down): try again next tick.
                log.exception("scheduler.tick.failed")
            await asyncio.sleep(self._tick)

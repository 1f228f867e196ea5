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

A dependency's outage (Redis holding the locks, the database holding the coaches'
schedules, the broker taking the tasks) is nobody's fault: the step that met it (`jobs`,
`claim`, `fire`) ends the tick, the outage is logged once when it starts and once when it
ends, and the loop tries again after a backoff (doubling from one tick up to
`scheduler_backoff_max_seconds`). An occurrence whose enqueue failed is unclaimed again,
so it fires once the broker is back (within the grace period). The loop never ends on an
error; a step slower than `scheduler_step_timeout_seconds` counts as an outage. While it
runs, the loop publishes the process's scheduler heartbeat (`cpsync.heartbeats`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from cpsync.accounts import tasks as account_tasks
from cpsync.calendars import tasks as calendar_tasks
from cpsync.clock import Clock
from cpsync.contests import tasks as contest_tasks
from cpsync.cron import ScheduledJob
from cpsync.db import Database
from cpsync.heartbeats import SCHEDULER, Heartbeats
from cpsync.jobs import JobState, finish_job, start_job
from cpsync.locks import Locks, new_owner
from cpsync.outages import Outage, is_outage
from cpsync.resources import Resources
from cpsync.students import tasks as student_tasks

log = logging.getLogger(__name__)

FAULT_REPORT_SECONDS = 24 * 3600.0


JobSource = Callable[[], Awaitable[Sequence[ScheduledJob]]]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


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


def process_scheduler(
    resources: Resources, *, tick_seconds: float | None = None, sleep: Sleep = asyncio.sleep
) -> Scheduler:
    """The process's one scheduler loop over `all_jobs`, faults recorded for /admin, its
    heartbeat in the process's cache."""
    settings = resources.settings
    return Scheduler(
        resources.locks,
        resources.clock,
        all_jobs(resources),
        tick_seconds=tick_seconds or settings.scheduler_tick_seconds,
        backoff_max_seconds=settings.scheduler_backoff_max_seconds,
        step_timeout_seconds=settings.scheduler_step_timeout_seconds,
        on_fault=record_faults(resources.db),
        heartbeats=Heartbeats(
            resources.cache, resources.clock, settings.heartbeat_seconds, sleep=sleep
        ),
        sleep=sleep,
    )


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


class StepFailedError(Exception):
    """A dependency failed during one step of a tick; the tick ended there."""

    def __init__(self, step: str, error: Exception) -> None:
        super().__init__(f"{step}: {error!r}")
        self.step = step
        self.error = error


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
        backoff_max_seconds: float = 15.0,
        step_timeout_seconds: float = 30.0,
        heartbeats: Heartbeats | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._locks = locks
        self._clock = clock
        self._jobs = jobs
        self._tick = tick_seconds
        self._grace = grace
        self._on_fault = on_fault
        self._step_timeout = step_timeout_seconds
        self._heartbeats = heartbeats
        self._sleep = sleep
        self._owner = new_owner()
        self._outage = Outage(
            log, "scheduler", base_seconds=tick_seconds, max_seconds=backoff_max_seconds
        )
        # Occurrences claimed whose enqueue failed: given back before the next claims.
        self._unclaim: set[str] = set()

    async def tick(self) -> list[str]:
        """Fire every job whose latest occurrence is due and unclaimed; return what fired.

        Raises StepFailedError when a dependency fails: the rest of the tick waits for
        the next one."""
        for claim in sorted(self._unclaim):
            await self._step("claim", self._locks.release(claim, self._owner))
            self._unclaim.discard(claim)
        now = self._clock()
        fired = []
        for job in await self._step("jobs", self._jobs()):
            try:
                occurrence = job.latest_occurrence(now)
            except Exception as error:
                # The same broken schedule fails on every tick: report it once a day.
                claim = f"fault:{job.name}:{error}"
                if await self._claim(claim, FAULT_REPORT_SECONDS):
                    await self._report(JobFault(job.name, "schedule", str(error), now))
                continue
            if now - occurrence > self._grace:
                continue
            claim = f"fire:{job.name}:{occurrence.isoformat()}"
            # Held for long after the grace period, so a late scheduler cannot claim it again.
            if await self._claim(claim, 2 * self._grace.total_seconds()):
                fired.append(claim)
                try:
                    await self._step("fire", job.fire())
                except StepFailedError:
                    self._unclaim.add(claim)  # not fired: a later tick fires it
                    raise
                except Exception as error:
                    await self._report(JobFault(job.name, "fire", repr(error), now))
        return fired

    async def _claim(self, name: str, ttl_seconds: float) -> bool:
        return await self._step("claim", self._locks.acquire(name, self._owner, ttl_seconds))

    async def _step(self, step: str, work: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._step_timeout):
                return await work
        except Exception as error:
            if is_outage(error):
                raise StepFailedError(step, error) from error
            raise

    async def _report(self, fault: JobFault) -> None:
        log.error(
            "scheduler.job.failed job=%s stage=%s error=%s", fault.job, fault.stage, fault.message
        )
        if self._on_fault is None:
            return
        try:
            async with asyncio.timeout(self._step_timeout):
                await self._on_fault(fault)
        except Exception:
            log.exception("scheduler.fault.unrecorded job=%s", fault.job)

    async def run_forever(self) -> None:
        """Tick until cancelled; never ends on an error (see the module's docstring)."""
        async with self._beating():
            while True:
                await self._sleep(await self._tick_once())

    async def _tick_once(self) -> float:
        """One tick; the seconds to wait before the next (longer while a dependency is away)."""
        try:
            await self.tick()
        except StepFailedError as failure:
            return self._outage.failed(failure.step, failure.error)
        except Exception as error:
            return self._outage.failed("tick", error)
        self._outage.recovered()
        return self._tick

    def _beating(self) -> AbstractAsyncContextManager[None]:
        if self._heartbeats is None:
            return nullcontext()
        return self._heartbeats.beating(SCHEDULER)

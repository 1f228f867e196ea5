"""What student tracking holds for a process's lifetime: one throttled Codeforces
client, the mailer, and the background syncs the web app starts.

Built once per process (app, CLI, worker) from settings and the shared database,
HTTP client, cache and locks; services are built from it per use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cpsync.cache import Cache
from cpsync.clock import Clock
from cpsync.db import Database
from cpsync.http import HttpClient
from cpsync.locks import Locks, open_locks
from cpsync.notify.email import Mailer, mailer_from_url
from cpsync.scheduler import ScheduledJob, Scheduler, record_faults
from cpsync.settings import Settings
from cpsync.students.codeforces_client import CodeforcesClient, CodeforcesClientConfig
from cpsync.students.config import StudentsConfig
from cpsync.students.dashboard import drop_student_stats
from cpsync.students.reminders import ReminderConfig, ReminderService
from cpsync.students.service import CodeforcesHandleChecker, HandleChecker
from cpsync.students.sync import Progress, StudentSyncService, SyncReport
from cpsync.students.throttle import (
    RedisThrottle,
    Throttle,
    ThrottleRate,
    throttle_from_url,
)

log = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 5.0


class StudentsRuntime:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        http: HttpClient,
        cache: Cache,
        clock: Clock,
        *,
        locks: Locks | None = None,
        throttle: Throttle | None = None,
        mailer: Mailer | None = None,
    ) -> None:
        self.config = StudentsConfig.from_settings(settings)
        self.db = db
        self.cache = cache
        self.clock = clock
        self.locks = locks or open_locks(settings.cache_url, settings.queue_name)
        self._owns_locks = locks is None
        rate = ThrottleRate(interval_seconds=self.config.interval_seconds)
        self.throttle: Throttle = throttle or throttle_from_url(self.config.throttle_url, rate)
        self.mailer = mailer or mailer_from_url(self.config.smtp_url)
        self.client = CodeforcesClient(
            http, self.throttle, CodeforcesClientConfig(base_url=self.config.codeforces_base_url)
        )
        check_config = CodeforcesClientConfig(base_url=self.config.codeforces_base_url, retries=0)
        self._check_client = CodeforcesClient(http, self.throttle, check_config)
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._scheduler: asyncio.Task[None] | None = None

    def checker(self) -> HandleChecker:
        """For forms: one attempt, bounded, so an outage is a quick form error, not a hang."""
        return CodeforcesHandleChecker(self._check_client, timeout_seconds=CHECK_TIMEOUT_SECONDS)

    def reminders(self) -> ReminderService:
        config = ReminderConfig(max_attempts=self.config.reminder_max_attempts)
        return ReminderService(self.db, self.mailer, self.clock, config)

    def sync_service(self) -> StudentSyncService:
        return StudentSyncService(
            self.db, self.client, self.cache, self.locks, self.clock, after_sync=self.reminders()
        )

    async def sync(
        self,
        *,
        coach_id: int | None = None,
        student_ids: Sequence[int] | None = None,
        trigger: str = "manual",
        progress: Progress | None = None,
    ) -> SyncReport:
        return await self.sync_service().sync(
            coach_id=coach_id, student_ids=student_ids, trigger=trigger, progress=progress
        )

    def start_sync(
        self,
        *,
        coach_id: int | None = None,
        student_ids: Sequence[int] | None = None,
        trigger: str = "manual",
    ) -> bool:
        """Run a sync in the background; False when the same one is already running."""
        scope = f"{coach_id}:{sorted(student_ids) if student_ids is not None else 'all'}"
        running = self._running.get(scope)
        if running is not None and not running.done():
            return False

        async def run() -> SyncReport | None:
            try:
                return await self.sync(coach_id=coach_id, student_ids=student_ids, trigger=trigger)
            except Exception:
                log.exception("students.sync.failed scope=%s", scope)
                return None

        self._running[scope] = asyncio.create_task(run(), name=f"students.sync:{scope}")
        return True

    def start_import(self, job_id: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run a CSV import job in the background, beside the syncs (see import_service)."""

        async def run() -> None:
            try:
                await work()
            except Exception:
                log.exception("students.import.failed job=%s", job_id)

        self._running[f"import:{job_id}"] = asyncio.create_task(
            run(), name=f"students.import:{job_id}"
        )

    def start_scheduler(self, tick_seconds: float = 30.0) -> None:
        """The coaches' sync schedules inside this process (the embedded deployment)."""
        scheduler = self.scheduler(tick_seconds)
        self._scheduler = asyncio.create_task(scheduler.run_forever(), name="students.scheduler")

    def scheduler(self, tick_seconds: float = 30.0) -> Scheduler:
        """What `start_scheduler` runs; a coach's broken schedule is recorded and skipped."""
        from cpsync.students.tasks import student_jobs

        def fire_for(coach_id: int) -> Callable[[], Awaitable[object]]:
            async def fire() -> bool:
                return self.start_sync(coach_id=coach_id, trigger="schedule")

            return fire

        async def source() -> Sequence[ScheduledJob]:
            return await student_jobs(self.db, fire_for)

        faults = record_faults(self.db)
        return Scheduler(self.locks, self.clock, source, tick_seconds=tick_seconds, on_fault=faults)

    async def forget_stats(self, student_ids: Sequence[int]) -> None:
        """An edit changed what the stats depend on (the time zone, the handle)."""
        for student_id in student_ids:
            await drop_student_stats(self.cache, student_id)

    async def wait_idle(self) -> None:
        """Wait for the background syncs (tests, shutdown)."""
        while tasks := [t for t in self._running.values() if not t.done()]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        if self._scheduler is not None:
            self._scheduler.cancel()
            await asyncio.gather(self._scheduler, return_exceptions=True)
        for task in self._running.values():
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        if isinstance(self.throttle, RedisThrottle):
            await self.throttle.aclose()
        if self._owns_locks:
            await self.locks.close()

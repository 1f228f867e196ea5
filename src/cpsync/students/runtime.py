"""Student tracking built from the process's `Resources`: the throttled Codeforces
clients, the services, and the background work a request asks for.

Owns nothing: everything it uses is the process's, opened once by `open_resources`.
Background work (syncs, CSV imports) goes onto the request's job list as named tasks
(`students.sync`, `students.import`), kicked after the request's commit; the embedded
in-memory broker runs them in this process, a worker runs them when scaled.
"""

from __future__ import annotations

from collections.abc import Sequence

from cpsync.locks import new_owner
from cpsync.queue import JobQueue
from cpsync.resources import Resources
from cpsync.students.codeforces_client import CodeforcesClient, CodeforcesClientConfig
from cpsync.students.config import StudentsConfig
from cpsync.students.dashboard import drop_student_stats
from cpsync.students.imports import ImportJob
from cpsync.students.reminders import ReminderConfig, ReminderService
from cpsync.students.service import CodeforcesHandleChecker, HandleChecker
from cpsync.students.sync import Progress, StudentSyncService, SyncConfig, SyncReport

CHECK_TIMEOUT_SECONDS = 5.0
SYNC = "students.sync"
IMPORT = "students.import"
SYNC_LOCK_SECONDS = 300.0  # extended while a run goes; only a dead holder lets it lapse


def sync_scope(coach_id: int | None, student_ids: list[int] | None) -> str:
    """The lock one sync run holds: runs of the same scope go one at a time."""
    return f"students.sync:{coach_id}:{student_ids if student_ids is not None else 'all'}"


class StudentsRuntime:
    def __init__(self, resources: Resources, jobs: JobQueue | None = None) -> None:
        self.resources = resources
        self.config = StudentsConfig.from_settings(resources.settings)
        self.db = resources.db
        self.cache = resources.cache
        self.clock = resources.clock
        self._jobs = jobs
        base_url = self.config.codeforces_base_url
        self.client = CodeforcesClient(resources.http, CodeforcesClientConfig(base_url=base_url))
        check_config = CodeforcesClientConfig(base_url=base_url, retries=0)
        self._check_client = CodeforcesClient(resources.http, check_config)

    def checker(self) -> HandleChecker:
        """For forms: one attempt, bounded, so an outage is a quick form error, not a hang."""
        return CodeforcesHandleChecker(self._check_client, timeout_seconds=CHECK_TIMEOUT_SECONDS)

    def reminders(self) -> ReminderService:
        config = ReminderConfig(max_attempts=self.config.reminder_max_attempts)
        return ReminderService(self.db, self.resources.mailer, self.clock, config)

    def sync_service(self) -> StudentSyncService:
        return StudentSyncService(
            self.db,
            self.client,
            self.cache,
            self.resources.locks,
            self.clock,
            config=SyncConfig(lock_ttl_seconds=self.resources.settings.students_sync_lock_seconds),
            after_sync=self.reminders(),
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

    async def start_sync(
        self,
        *,
        coach_id: int | None = None,
        student_ids: Sequence[int] | None = None,
        trigger: str = "manual",
    ) -> bool:
        """Queue a sync for after the request's commit; False when the same one is
        running now (in any process: the lock is shared) and covers it already."""
        ids = sorted(student_ids) if student_ids is not None else None
        if await self._running(sync_scope(coach_id, ids)):
            return False
        self._queue().enqueue(SYNC, coach_id, ids, trigger)
        return True

    async def _running(self, scope: str) -> bool:
        probe, locks = new_owner(), self.resources.locks
        if not await locks.acquire(scope, probe, SYNC_LOCK_SECONDS):
            return True
        await locks.release(scope, probe)
        return False

    def start_import(self, job: ImportJob) -> None:
        """Queue a CSV import job (its state lives in the cache; see import_service)."""
        self._queue().enqueue(IMPORT, job.coach_id, job.id)

    async def forget_stats(self, student_ids: Sequence[int]) -> None:
        """An edit changed what the stats depend on (the time zone, the handle)."""
        for student_id in student_ids:
            await drop_student_stats(self.cache, student_id)

    def _queue(self) -> JobQueue:
        if self._jobs is None:
            raise RuntimeError("background work needs the request's job list")
        return self._jobs

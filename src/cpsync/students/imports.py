"""CSV import as a background job: check the file's handles, plan each row, then keep the
plan as a preview or store it.

A file's new handles are checked in batched `user.info` calls (about 150 handles per
call; each unknown handle costs one more call, see `CodeforcesClient.lookup_users`) at
the shared throttle's pace, so a large file takes minutes. The job therefore runs in
the background like "Sync now" (`StudentsRuntime.start_import`), with a time budget that
grows with the file, and its state lives in the cache (shared by every web process when
the cache is Redis) where the import page reads its progress and report.

"Preview changes" stops after planning; applying a preview runs the job again, which
re-plans against the students as they are then and reuses the handles already checked.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.cache import Cache
from cpsync.clock import Clock
from cpsync.db import Database
from cpsync.errors import CpsyncError
from cpsync.students.codeforces_api import LookupProgress, UserLookup
from cpsync.students.csv_io import (
    Current,
    Outcome,
    RowPlan,
    column_of,
    handles_to_check,
    parse_rows,
    plan_rows,
)
from cpsync.students.models import Student
from cpsync.students.service import CodeforcesHandleChecker, StudentService

log = logging.getLogger(__name__)

JOB_TTL_SECONDS = 86400.0
# On top of one throttled call per handle and per batch (the worst case: every handle
# unknown), room for the client's retries after "Call limit exceeded" or a 503.
BUDGET_SLACK_SECONDS = 60.0
FAILED_MESSAGE = "The import stopped on an unexpected error; nothing was saved. Try again."
# A running job saves its progress after every Codeforces call (a few seconds apart,
# a minute or two at worst with retries); one silent this long died with its process.
STALLED_AFTER = timedelta(minutes=10)
STALLED_MESSAGE = (
    "The import stopped before it finished (the server may have restarted). "
    "Check the students table, then upload the file again if needed."
)


class HandleLookups(Protocol):
    """The part of `CodeforcesClient` an import uses."""

    async def lookup_users(
        self,
        handles: Sequence[str],
        *,
        progress: LookupProgress | None = None,
        keep_going: Callable[[], bool] | None = None,
    ) -> UserLookup: ...

    def calls_at_least(self, handles: Sequence[str]) -> int: ...


class JobState(StrEnum):
    CHECKING = "checking"  # looking handles up
    PREVIEW = "preview"  # planned, nothing written
    DONE = "done"  # written
    FAILED = "failed"


@dataclass
class ImportJob:
    id: str
    coach_id: int
    apply: bool  # False: a preview
    text: str
    state: JobState = JobState.CHECKING
    checked: int = 0
    to_check: int = 0
    # Casefolded handle -> Codeforces' spelling (None: no such user); only settled ones.
    canonical: dict[str, str | None] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    saved_at: str = ""  # ISO time of the last save

    @property
    def running(self) -> bool:
        return self.state is JobState.CHECKING

    def count(self, outcome: str) -> int:
        return sum(1 for row in self.rows if row["outcome"] == outcome)


def budget_seconds(calls_at_least: int, handles: int, interval_seconds: float) -> float:
    """Time for every handle to be unknown (one call each) on top of the batches."""
    return interval_seconds * (calls_at_least + handles) + BUDGET_SLACK_SECONDS


def row_view(plan: RowPlan) -> dict[str, Any]:
    return {
        "line": plan.line,
        "handle": plan.handle,
        "outcome": plan.outcome.value,
        "changes": [[column_of(c.field), c.old, c.new] for c in plan.changes],
        "errors": dict(plan.errors),
    }


class ImportJobs:
    """Jobs in the cache, each readable only by the coach who started it."""

    def __init__(self, cache: Cache, clock: Clock) -> None:
        self._cache = cache
        self._clock = clock

    async def create(self, coach_id: int, text: str, *, apply: bool) -> ImportJob:
        job = ImportJob(secrets.token_urlsafe(12), coach_id, apply, text)
        await self.save(job)
        return job

    async def get(self, coach_id: int, job_id: str) -> ImportJob | None:
        raw = await self._cache.get(_key(job_id))
        if raw is None:
            return None
        try:
            stored = json.loads(raw)
            job = ImportJob(**stored | {"state": JobState(stored["state"])})
        except (ValueError, TypeError, KeyError):  # written by another version of cpsync
            return None
        if job.coach_id != coach_id:
            return None
        if job.running and self._clock() - datetime.fromisoformat(job.saved_at) > STALLED_AFTER:
            job.state, job.error = JobState.FAILED, STALLED_MESSAGE
        return job

    async def save(self, job: ImportJob) -> None:
        job.saved_at = self._clock().isoformat()
        await self._cache.set(_key(job.id), json.dumps(asdict(job)).encode(), JOB_TTL_SECONDS)


def _key(job_id: str) -> str:
    return f"students:import:{job_id}"


@dataclass(frozen=True, slots=True)
class Stored:
    """What an applied import changed, for the work that follows its commit."""

    updated_ids: list[int]
    resync_ids: list[int]


AfterImport = Callable[[int, Stored], Awaitable[None]]


class CsvImporter:
    def __init__(
        self,
        db: Database,
        client: HandleLookups,
        jobs: ImportJobs,
        clock: Clock,
        *,
        interval_seconds: float,
        after_import: AfterImport,
    ) -> None:
        self._db = db
        self._client = client
        self._jobs = jobs
        self._clock = clock
        self._interval = interval_seconds
        self._after_import = after_import

    async def run(self, job: ImportJob) -> None:
        """Check, plan and (unless a preview) store; the job records how it ended."""
        try:
            stored = await self._run(job)
        except Exception:
            log.exception("students.import.failed job=%s", job.id)
            job.state, job.error = JobState.FAILED, FAILED_MESSAGE
            await self._jobs.save(job)
            return
        await self._jobs.save(job)
        if stored is not None:
            await self._after_import(job.coach_id, stored)

    async def _run(self, job: ImportJob) -> Stored | None:
        parsed = parse_rows(job.text)
        async with self._db.session() as session:
            existing = [
                Current.of(s) for s in await self._service(session).students_of(job.coach_id)
            ]
        wanted = [
            handle
            for handle in handles_to_check(parsed.rows, existing)
            if handle.casefold() not in job.canonical
        ]
        job.canonical |= await self._check(job, wanted)
        async with self._db.session() as session:
            service = self._service(session)
            zone = await service.default_zone(job.coach_id)
            students = {s.id: s for s in await service.students_of(job.coach_id)}
            current = [Current.of(s) for s in students.values()]
            plans = plan_rows(parsed, current, job.canonical, zone)
            job.rows = [row_view(plan) for plan in plans]
            if not job.apply:
                job.state = JobState.PREVIEW
                return None
            stored = await _store(service, job.coach_id, plans, students)
            await session.commit()
        job.state = JobState.DONE
        return stored

    async def _check(self, job: ImportJob, handles: list[str]) -> dict[str, str | None]:
        if not handles:
            return {}
        job.checked, job.to_check = 0, len(handles)
        await self._jobs.save(job)
        seconds = budget_seconds(self._client.calls_at_least(handles), len(handles), self._interval)
        deadline = self._clock() + timedelta(seconds=seconds)

        async def progress(done: int, total: int) -> None:
            job.checked, job.to_check = done, total
            await self._jobs.save(job)

        lookup = await self._client.lookup_users(
            handles, progress=progress, keep_going=lambda: self._clock() < deadline
        )
        if lookup.failures:
            log.warning("students.import.lookup job=%s failures=%s", job.id, lookup.failures)
        settled: dict[str, str | None] = dict.fromkeys(lookup.not_found)
        settled |= {key: info.handle for key, info in lookup.found.items()}
        return settled

    def _service(self, session: AsyncSession) -> StudentService:
        # Handles are checked here in bulk, never one by one through the service.
        return StudentService(session, CodeforcesHandleChecker(self._client), self._clock)


async def _store(
    service: StudentService,
    coach_id: int,
    plans: Sequence[RowPlan],
    students: Mapping[int, Student],
) -> Stored:
    updated: list[int] = []
    resync: list[int] = []
    for plan in plans:
        if plan.outcome not in (Outcome.ADDED, Outcome.UPDATED):
            continue
        target = students.get(plan.student_id) if plan.student_id is not None else None
        saved = await service.store_row(coach_id, target, plan.values)
        if target is not None:
            updated.append(saved.student.id)
        if saved.needs_sync:
            resync.append(saved.student.id)
    return Stored(updated, resync)


class ImportJobNotFoundError(CpsyncError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__("No such import: it may have expired (imports are kept for a day).")

"""Student sync: one `user.info` pass, the planner's calls, rows stored, reminders sent.

A run:

1. records a `student_sync_runs` row (progress and counts, updated as it goes);
2. refreshes the problem catalogue when the cached copy is older than a day;
3. looks every student up with `user.info` in batches, records unknown handles on
   their students and follows renamed handles;
4. for each planned student, under that student's lock, makes only the planned calls
   and stores the result in one transaction (a failure leaves the student as it was,
   with the error recorded); `last_synced_at` moves to the time its calls started
   whenever the student synced, even when nothing changed;
5. drops that student's cached statistics, then runs the inactivity check
   (`ReminderService`) for the students whose data is current.

"Call limit exceeded" and 503 have already been retried by the client; what still fails
pauses the run for the hinted delay and the run moves on to the next student.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from cpsync.cache import Cache
from cpsync.clock import Clock
from cpsync.db import Database
from cpsync.locks import Locks, new_owner
from cpsync.students.codeforces_api import (
    CodeforcesError,
    CodeforcesRetriableError,
    ProblemCatalogue,
    RatingChange,
    Submission,
    UserInfo,
    UserLookup,
)
from cpsync.students.dashboard import drop_student_stats
from cpsync.students.models import Student, StudentSyncRun
from cpsync.students.planner import (
    PageRequest,
    PagingConfig,
    PlannerConfig,
    SettledSubmissions,
    StoredStudent,
    StudentPlan,
    first_status_page,
    next_status_page,
    plan_sync,
    settle_submissions,
)
from cpsync.students.reminders import ReminderCounts
from cpsync.students.repository import StudentRepository

log = logging.getLogger(__name__)

CATALOGUE_FRESH_KEY = "students:catalogue:fresh"
HANDLE_NOT_FOUND = "Codeforces has no user with this handle."
INTERRUPTED = "The sync was interrupted before it finished (its worker stopped)."
PROGRESS_EVERY = 20
Progress = Callable[[int, int], None]
Sleep = Callable[[float], Awaitable[None]]


class CodeforcesReads(Protocol):
    """What a sync needs from `CodeforcesClient`."""

    async def lookup_users(self, handles: Sequence[str]) -> UserLookup: ...

    async def user_status(self, handle: str, from_: int, count: int) -> list[Submission]: ...

    async def user_rating(self, handle: str) -> list[RatingChange]: ...

    async def problemset_problems(self) -> ProblemCatalogue: ...


class AfterSync(Protocol):
    """Runs once a run has stored everything (the inactivity check)."""

    async def __call__(self, student_ids: Sequence[int]) -> ReminderCounts: ...


@dataclass(frozen=True, slots=True)
class SyncConfig:
    paging: PagingConfig = field(default_factory=PagingConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    catalogue_ttl: timedelta = timedelta(days=1)
    # A student's lock, kept alive while the student syncs: a dead holder's lapses after it.
    lock_ttl_seconds: float = 300.0
    max_backoff_seconds: float = 60.0


@dataclass(slots=True)
class SyncCounts:
    students: int = 0
    synced: int = 0
    status_fetched: int = 0
    ratings_fetched: int = 0
    new_submissions: int = 0
    not_found: int = 0
    unresolved: int = 0
    renamed: int = 0
    errors: int = 0
    busy: int = 0
    catalogue_problems: int = 0
    reminders_sent: int = 0
    reminders_failed: int = 0


@dataclass(frozen=True, slots=True)
class SyncReport:
    run_id: int
    state: str
    counts: SyncCounts


class StudentSyncService:
    def __init__(
        self,
        db: Database,
        client: CodeforcesReads,
        cache: Cache,
        locks: Locks,
        clock: Clock,
        *,
        config: SyncConfig | None = None,
        after_sync: AfterSync | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._db = db
        self._client = client
        self._cache = cache
        self._locks = locks
        self._clock = clock
        self._config = config or SyncConfig()
        self._after_sync = after_sync
        self._sleep = sleep

    async def sync(
        self,
        *,
        coach_id: int | None = None,
        student_ids: Sequence[int] | None = None,
        trigger: str = "manual",
        progress: Progress | None = None,
        scope: str | None = None,
    ) -> SyncReport:
        """Sync a coach's students (None: everyone's), or only `student_ids` among them.

        `scope` names the lock the caller holds for this run: a run of the same scope
        still marked running was left by a holder that died (kill -9), and is closed
        as interrupted before this one starts; the reminder claims it left pending are
        released, so this run sends them.
        """
        counts = SyncCounts()
        run_id = await self._start_run(coach_id, student_ids, trigger, scope)
        try:
            state = await self._run(run_id, coach_id, student_ids, counts, progress)
        except asyncio.CancelledError:
            # The worker is stopping: its task is delivered again and runs anew.
            await self._finish_run(run_id, "failed", counts, error=INTERRUPTED)
            raise
        except Exception as exc:
            await self._finish_run(run_id, "failed", counts, error=str(exc)[:500])
            raise
        await self._finish_run(run_id, state, counts)
        return SyncReport(run_id, state, counts)

    async def _run(
        self,
        run_id: int,
        coach_id: int | None,
        student_ids: Sequence[int] | None,
        counts: SyncCounts,
        progress: Progress | None,
    ) -> str:
        async with self._db.session() as session:
            students = await StudentRepository(session).for_sync(coach_id, student_ids)
        counts.students = len(students)
        if not students:
            return "done"  # nobody to sync: not even the catalogue is worth a call
        await self._refresh_catalogue(counts)
        lookup = await self._client.lookup_users([s.handle for s in students])
        plan = plan_sync([stored(s) for s in students], lookup, self._config.planner)
        newest = {s.id: s.newest_submission_id for s in students}
        await self._record_lookup_failures(plan.not_found, plan.unresolved, lookup, counts)
        current: list[int] = []
        total = len(plan.students)
        for done, student_plan in enumerate(plan.students, start=1):
            if await self._sync_one(student_plan, newest[student_plan.student_id], counts):
                current.append(student_plan.student_id)
            # Stored every few students: one write per student would double a daily run.
            if done == total or done % PROGRESS_EVERY == 0:
                await self._progress(run_id, done, total, counts)
            if progress is not None:
                progress(done, total)
        if self._after_sync is not None and current:
            reminded = await self._after_sync(current)
            counts.reminders_sent = reminded.sent
            counts.reminders_failed = reminded.failed
        if lookup.failures and not plan.students:
            return "failed"
        return "partial" if counts.errors or counts.unresolved else "done"

    # ------------------------------------------------------------ one student

    async def _sync_one(self, plan: StudentPlan, newest_id: int | None, counts: SyncCounts) -> bool:
        """True when the student's stored data is current after this run."""
        async with self._student_lock(plan.student_id) as held:
            if not held:
                counts.busy += 1  # another run is syncing this student right now
                return False
            stored_ok = await self._fetch_and_store(plan, newest_id, counts)
        if stored_ok:
            await drop_student_stats(self._cache, plan.student_id)
        return stored_ok

    @asynccontextmanager
    async def _student_lock(self, student_id: int) -> AsyncIterator[bool]:
        """The student's lock, kept alive while held; whether it was had.

        A lock still held is waited for, up to its TTL: a live holder is done with one
        student within that as a rule, and a dead one's lock (kill -9) has lapsed by then,
        so the run that takes over from a killed one syncs the student it was on."""
        name = f"students:sync:{student_id}"
        owner = new_owner()
        ttl = self._config.lock_ttl_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ttl + 1.0
        while not await self._locks.acquire(name, owner, ttl):
            if loop.time() >= deadline:
                yield False
                return
            # Real time, not the injected sleep: the holder is another task or process.
            await asyncio.sleep(min(1.0, ttl / 10))
        keeper = asyncio.create_task(self._keep_lock(name, owner, ttl))
        try:
            yield True
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await self._locks.release(name, owner)

    async def _keep_lock(self, name: str, owner: str, ttl: float) -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            await self._locks.extend(name, owner, ttl)

    async def _fetch_and_store(
        self, plan: StudentPlan, newest_id: int | None, counts: SyncCounts
    ) -> bool:
        started = self._clock()
        try:
            update = await fetch_student(self._client, plan, newest_id, self._config.paging)
        except CodeforcesError as error:
            counts.errors += 1
            await self._record_error(plan.student_id, error.message)
            if isinstance(error, CodeforcesRetriableError):
                await self._sleep(min(error.retry_after, self._config.max_backoff_seconds))
            return False
        return await self._store(plan, update, started, counts)

    async def _store(
        self, plan: StudentPlan, update: StudentUpdate, started: datetime, counts: SyncCounts
    ) -> bool:
        try:
            async with self._db.session() as session, session.begin():
                student = await session.get(Student, plan.student_id)
                if student is None:
                    return False  # deleted while we fetched
                repository = StudentRepository(session)
                apply_info(student, plan.info)
                if update.submissions is not None:
                    settled = update.submissions
                    counts.new_submissions += await repository.upsert_submissions(
                        student.id, settled.final
                    )
                    student.newest_submission_id = settled.newest_submission_id
                    student.pending_verdicts = settled.pending_verdicts
                    counts.status_fetched += 1
                if update.ratings is not None:
                    await repository.replace_ratings(student.id, update.ratings)
                    counts.ratings_fetched += 1
                student.needs_full_sync = False
                student.last_sync_error = None
                student.last_synced_at = started
        except IntegrityError:
            # A rename onto a handle this coach already tracks under another student.
            counts.errors += 1
            await self._record_error(plan.student_id, f"handle {plan.handle} is tracked twice")
            return False
        counts.synced += 1
        counts.renamed += plan.renamed
        return True

    # ------------------------------------------------------------ bookkeeping

    async def _refresh_catalogue(self, counts: SyncCounts) -> None:
        if await self._cache.get(CATALOGUE_FRESH_KEY) is not None:
            return
        try:
            catalogue = await self._client.problemset_problems()
        except CodeforcesError as error:
            log.warning("students.catalogue.failed error=%s", error.message)
            return
        async with self._db.session() as session, session.begin():
            counts.catalogue_problems = await StudentRepository(session).replace_catalogue(
                catalogue.problems
            )
        ttl = self._config.catalogue_ttl.total_seconds()
        await self._cache.set(CATALOGUE_FRESH_KEY, b"1", ttl)

    async def _record_lookup_failures(
        self,
        not_found: Sequence[int],
        unresolved: Sequence[int],
        lookup: UserLookup,
        counts: SyncCounts,
    ) -> None:
        counts.not_found = len(not_found)
        counts.unresolved = len(unresolved)
        reason = "; ".join(lookup.failures) or "Codeforces did not answer"
        for student_id in not_found:
            await self._record_error(student_id, HANDLE_NOT_FOUND)
        for student_id in unresolved:
            await self._record_error(student_id, reason[:500])

    async def _record_error(self, student_id: int, message: str) -> None:
        async with self._db.session() as session, session.begin():
            student = await session.get(Student, student_id)
            if student is not None:
                student.last_sync_error = message

    async def _start_run(
        self,
        coach_id: int | None,
        student_ids: Sequence[int] | None,
        trigger: str,
        scope: str | None,
    ) -> int:
        now = self._clock()
        async with self._db.session() as session, session.begin():
            if scope is not None:
                repository = StudentRepository(session)
                dead_since = await repository.close_abandoned_runs(scope, now, INTERRUPTED)
                if dead_since is not None:
                    # The reminder the dead run was sending is pending under its claim;
                    # no one alive holds it (we hold the scope's lock), so it is sent by
                    # this run rather than after the claim's lease.
                    released = await repository.release_dead_claims(
                        coach_id, student_ids, dead_since, now
                    )
                    if released:
                        log.info("students.sync.released_claims scope=%s count=%s", scope, released)
            run = StudentSyncRun(
                coach_id=coach_id,
                trigger=trigger,
                state="running",
                started_at=now,
                counts={},
                scope=scope,
            )
            session.add(run)
            await session.flush()
            return run.id

    async def _progress(self, run_id: int, done: int, total: int, counts: SyncCounts) -> None:
        async with self._db.session() as session, session.begin():
            run = await session.get(StudentSyncRun, run_id)
            if run is not None:
                run.done, run.total, run.counts = done, total, asdict(counts)

    async def _finish_run(
        self, run_id: int, state: str, counts: SyncCounts, *, error: str | None = None
    ) -> None:
        async with self._db.session() as session, session.begin():
            run = await session.get(StudentSyncRun, run_id)
            if run is not None:
                run.state = state
                run.finished_at = self._clock()
                run.counts = asdict(counts)
                run.error = error


@dataclass(frozen=True, slots=True)
class StudentUpdate:
    """What Codeforces said about one planned student; the sync stores it."""

    submissions: SettledSubmissions | None  # None: user.status was not needed
    ratings: Sequence[RatingChange] | None  # None: user.rating was not needed; else all of it


async def fetch_new_submissions(
    client: CodeforcesReads, handle: str, newest_stored_id: int | None, config: PagingConfig
) -> SettledSubmissions:
    """Page `user.status` from the newest down to the first stored submission."""
    request: PageRequest | None = first_status_page(newest_stored_id, config)
    fetched: list[Submission] = []
    while request is not None:
        page = await client.user_status(handle, request.from_, request.count)
        step = next_status_page(request, page, newest_stored_id, config)
        fetched.extend(step.fresh)
        request = step.next_page
    return settle_submissions(fetched, newest_stored_id)


async def fetch_student(
    client: CodeforcesReads, plan: StudentPlan, newest_stored_id: int | None, config: PagingConfig
) -> StudentUpdate:
    """Only the calls the plan asks for, under the student's current handle."""
    submissions = (
        await fetch_new_submissions(client, plan.handle, newest_stored_id, config)
        if plan.fetch_status
        else None
    )
    ratings = await client.user_rating(plan.handle) if plan.fetch_rating else None
    return StudentUpdate(submissions, ratings)


def stored(student: Student) -> StoredStudent:
    return StoredStudent(
        id=student.id,
        handle=student.handle,
        last_synced_at=student.last_synced_at,
        newest_submission_id=student.newest_submission_id,
        rating=student.rating,
        is_new=student.needs_full_sync,
        pending_verdicts=student.pending_verdicts,
        last_online_at=student.last_online_at,
    )


def apply_info(student: Student, info: UserInfo) -> None:
    """Copy `user.info` onto the student; a renamed handle is followed."""
    student.handle = info.handle
    student.handle_key = info.handle.casefold()
    student.rating = info.rating
    student.max_rating = info.max_rating
    student.rank = info.rank
    student.max_rank = info.max_rank
    student.last_online_at = info.last_online

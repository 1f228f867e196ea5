"""Adding, editing and deleting students: the coach-facing use cases.

A handle is checked against Codeforces before anything is saved (an unknown handle is
a form error); the spelling Codeforces answers with is stored. A changed handle is a
different account: its stored rows are dropped and the student is synced in full.
A coach's settings (sync schedule, reminder policy) are loaded and saved here too.
Callers commit (commit at the edges) and then start the immediate sync.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.models import Role, User
from cpsync.accounts.repository import AccountRepository
from cpsync.clock import Clock
from cpsync.errors import CpsyncError
from cpsync.students.codeforces_api import (
    UNAVAILABLE_PAUSE_SECONDS,
    CodeforcesError,
    CodeforcesUnavailableError,
    UserLookup,
)
from cpsync.students.models import (
    DEFAULT_SYNC_CRON,
    Student,
    StudentSettings,
    StudentSyncRun,
)
from cpsync.students.repository import SORTABLE, StudentPage, StudentRepository
from cpsync.students.schedule import Picker, ScheduleError, sync_cron, zone_or_utc
from cpsync.students.schemas import StudentInput

UNKNOWN_HANDLE = "Codeforces has no user with this handle."
SORT_KEYS = frozenset(SORTABLE)
UNCHECKED_HANDLE = "Codeforces could not be reached to check this handle; try again shortly."
DUPLICATE_HANDLE = "You already track a student with this handle."


def tracked_as(handle: str) -> str:
    """For a handle Codeforces answers under a (renamed) handle the coach already tracks."""
    return f"This handle is already tracked as {handle} (Codeforces renamed it)."


class StudentFormError(CpsyncError):
    status_code = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class StudentNotFoundError(CpsyncError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__("No such student.")


class NotACoachError(CpsyncError):
    status_code = 403

    def __init__(self) -> None:
        super().__init__("Only coaches and admins track students.")


class HandleChecker(Protocol):
    async def canonical_handles(self, handles: Sequence[str]) -> dict[str, str | None]:
        """Casefolded handle -> Codeforces' spelling, or None when it does not exist.

        Raises CodeforcesError when Codeforces cannot answer.
        """


class UserLookups(Protocol):
    async def lookup_users(self, handles: Sequence[str]) -> UserLookup: ...


class CodeforcesHandleChecker:
    def __init__(self, client: UserLookups, *, timeout_seconds: float | None = None) -> None:
        self._client = client
        self._timeout = timeout_seconds

    async def canonical_handles(self, handles: Sequence[str]) -> dict[str, str | None]:
        try:
            lookup = await asyncio.wait_for(self._client.lookup_users(handles), self._timeout)
        except TimeoutError as exc:
            raise CodeforcesUnavailableError(
                UNCHECKED_HANDLE, retry_after=UNAVAILABLE_PAUSE_SECONDS
            ) from exc
        if lookup.unresolved:
            raise CodeforcesUnavailableError(
                UNCHECKED_HANDLE, retry_after=UNAVAILABLE_PAUSE_SECONDS
            )
        answer: dict[str, str | None] = {}
        for handle in handles:
            info = lookup.get(handle)
            answer[handle.casefold()] = info.handle if info is not None else None
        return answer


async def visible_student(session: AsyncSession, user: User, student_id: int) -> Student:
    """The student, if this user may see them; otherwise a 404 (never a hint that it exists)."""
    student = await StudentRepository(session).get(student_id, coach_scope(user))
    if student is None:
        raise StudentNotFoundError
    return student


async def students_page(
    session: AsyncSession,
    viewer: User,
    *,
    query: str = "",
    sort: str = "name",
    descending: bool = False,
    offset: int = 0,
    limit: int | None = 50,
) -> StudentPage:
    """The students a viewer sees, filtered by `query` and sorted by a `SORT_KEYS` column."""
    return await StudentRepository(session).page(
        coach_scope(viewer),
        query=query.strip()[:100],
        sort=sort if sort in SORT_KEYS else "name",
        descending=descending,
        offset=offset,
        limit=limit,
    )


async def latest_runs(session: AsyncSession, viewer: User, limit: int) -> list[StudentSyncRun]:
    """The newest sync runs a viewer may see (their own and the scheduled ones)."""
    return await StudentRepository(session).recent_runs(coach_scope(viewer), limit=limit)


def coach_scope(user: User) -> int | None:
    """Whose students a user sees: their own (coach), everyone's (admin, None)."""
    if user.role == Role.ADMIN:
        return None
    if user.role == Role.COACH:
        return user.id
    raise NotACoachError


@dataclass(frozen=True, slots=True)
class Saved:
    student: Student
    needs_sync: bool


class StudentService:
    def __init__(self, session: AsyncSession, checker: HandleChecker, clock: Clock) -> None:
        self._session = session
        self._repository = StudentRepository(session)
        self._checker = checker
        self._clock = clock

    async def get(self, user: User, student_id: int) -> Student:
        return await visible_student(self._session, user, student_id)

    async def add(self, coach: User, values: StudentInput) -> Saved:
        coach_scope(coach)
        if await self._repository.by_handle(coach.id, values.handle) is not None:
            raise StudentFormError({"handle": DUPLICATE_HANDLE})
        handle = await self._check_one(values.handle)
        await self._refuse_renamed_duplicate(coach.id, handle, None)
        now = self._clock()
        student = Student(
            coach_id=coach.id,
            handle=handle,
            handle_key=handle.casefold(),
            created_at=now,
            updated_at=now,
            pending_verdicts=False,
            needs_full_sync=True,
            reminders_sent=0,
        )
        self._assign(student, values, await self.default_zone(coach.id))
        self._repository.add(student)
        await self._session.flush()
        return Saved(student, needs_sync=True)

    async def update(self, user: User, student_id: int, values: StudentInput) -> Saved:
        student = await self.get(user, student_id)
        changed = values.handle.casefold() != student.handle_key
        if changed:
            other = await self._repository.by_handle(student.coach_id, values.handle)
            if other is not None and other.id != student.id:
                raise StudentFormError({"handle": DUPLICATE_HANDLE})
            handle = await self._check_one(values.handle)
            await self._refuse_renamed_duplicate(student.coach_id, handle, student.id)
            await self._forget_account(student)
            student.handle, student.handle_key = handle, handle.casefold()
        self._assign(student, values, await self.default_zone(student.coach_id))
        student.updated_at = self._clock()
        await self._session.flush()
        return Saved(student, needs_sync=changed)

    async def delete(self, user: User, student_id: int) -> None:
        student = await self.get(user, student_id)
        await self._repository.delete(student)

    async def set_reminders(self, user: User, student_id: int, enabled: bool) -> Student:
        student = await self.get(user, student_id)
        student.reminders_enabled = enabled
        student.updated_at = self._clock()
        return student

    async def default_zone(self, coach_id: int) -> str:
        preferences = await AccountRepository(self._session).preferences(coach_id)
        if preferences is not None and preferences.timezone:
            return preferences.timezone
        settings = await self._repository.settings_for(coach_id)
        return settings.timezone if settings is not None else "UTC"

    async def _check_one(self, handle: str) -> str:
        try:
            canonical = (await self._checker.canonical_handles([handle])).get(handle.casefold())
        except CodeforcesError as error:
            raise StudentFormError({"handle": UNCHECKED_HANDLE}) from error
        if canonical is None:
            raise StudentFormError({"handle": UNKNOWN_HANDLE})
        return canonical

    async def _refuse_renamed_duplicate(
        self, coach_id: int, handle: str, student_id: int | None
    ) -> None:
        """The typed handle was free, but Codeforces' spelling may belong to a tracked one."""
        other = await self._repository.by_handle(coach_id, handle)
        if other is not None and other.id != student_id:
            raise StudentFormError({"handle": tracked_as(other.handle)})

    async def _forget_account(self, student: Student) -> None:
        """The rows belonged to the previous handle's account."""
        await self._repository.forget_account_rows(student.id)
        student.rating = student.max_rating = None
        student.rank = student.max_rank = None
        student.last_online_at = student.last_synced_at = None
        student.newest_submission_id = None
        student.pending_verdicts = False
        student.needs_full_sync = True
        student.last_sync_error = None

    @staticmethod
    def _assign(student: Student, values: StudentInput, default_zone: str) -> None:
        student.name = values.name
        student.email = values.email
        student.phone = values.phone
        student.group_name = values.group
        student.timezone = values.timezone or default_zone
        student.reminders_enabled = values.reminders_enabled

    async def students_of(self, coach_id: int) -> list[Student]:
        return await self._repository.of_coach(coach_id)

    async def store_row(
        self, coach_id: int, target: Student | None, values: Mapping[str, Any]
    ) -> Saved:
        """Store a planned CSV row (see csv_io.plan_rows: its handle is already checked).

        `values` holds every field; `timezone` is already resolved to a zone.
        """
        now = self._clock()
        handle = str(values["handle"])
        if target is None:
            student = Student(
                coach_id=coach_id,
                handle=handle,
                handle_key=handle.casefold(),
                created_at=now,
                pending_verdicts=False,
                needs_full_sync=True,
                reminders_sent=0,
            )
            self._repository.add(student)
            changed = True
        else:
            student = target
            changed = handle.casefold() != student.handle_key
            if changed:
                await self._forget_account(student)
            student.handle, student.handle_key = handle, handle.casefold()
        student.name = str(values["name"])
        student.email = str(values["email"])
        student.phone = str(values["phone"])
        student.group_name = str(values["group"])
        student.timezone = str(values["timezone"])
        student.reminders_enabled = bool(values["reminders_enabled"])
        student.updated_at = now
        await self._session.flush()
        return Saved(student, needs_sync=changed)


# ---------------------------------------------------------------- a coach's settings
# The sync schedule (cron in the database) and the reminder policy.


@dataclass(frozen=True, slots=True)
class SettingsInput:
    picker: Picker
    timezone: str
    inactive_days: int
    accepted_only: bool
    repeat_every_days: int | None


def default_settings(coach_id: int, zone: str, clock: Clock) -> StudentSettings:
    return StudentSettings(
        coach_id=coach_id,
        sync_cron=DEFAULT_SYNC_CRON,
        timezone=zone,
        inactive_days=7,
        accepted_only=False,
        repeat_every_days=None,
        updated_at=clock(),
    )


async def load_settings(
    session: AsyncSession, coach_id: int, zone: str, clock: Clock
) -> StudentSettings:
    found = await StudentRepository(session).settings_for(coach_id)
    return found if found is not None else default_settings(coach_id, zone, clock)


async def save_settings(
    session: AsyncSession, coach_id: int, values: SettingsInput, clock: Clock
) -> StudentSettings:
    """Validate and store; raises ScheduleError with a message for the form."""
    cron = sync_cron(values.picker, clock())
    if str(zone_or_utc(values.timezone)) != values.timezone:
        raise ScheduleError("Unknown time zone: use a name like Asia/Kolkata.", "timezone")
    if not 1 <= values.inactive_days <= 365:
        raise ScheduleError("Inactivity is between 1 and 365 days.", "inactive_days")
    if values.repeat_every_days is not None and not 1 <= values.repeat_every_days <= 365:
        raise ScheduleError("Repeats are between 1 and 365 days apart.", "repeat_every_days")
    repository = StudentRepository(session)
    row = await repository.settings_for(coach_id)
    if row is None:
        row = default_settings(coach_id, values.timezone, clock)
        repository.add_settings(row)
    row.sync_cron = cron
    row.timezone = values.timezone
    row.inactive_days = values.inactive_days
    row.accepted_only = values.accepted_only
    row.repeat_every_days = values.repeat_every_days
    row.updated_at = clock()
    return row

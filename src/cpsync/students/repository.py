"""Every query of student tracking. Callers own the transaction (commit at the edges)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.students.codeforces_api import Problem, RatingChange, Submission
from cpsync.students.models import (
    CodeforcesProblem,
    ReminderAttempt,
    Student,
    StudentRating,
    StudentReminder,
    StudentSettings,
    StudentSubmission,
    StudentSyncRun,
)
from cpsync.students.stats import CatalogueProblem, RatingRow, SubmissionRow

# Keeps each statement well under SQLite's and asyncpg's bound-parameter limits.
CHUNK = 500

SORTABLE = {
    "name": Student.name,
    "email": Student.email,
    "handle": Student.handle_key,
    "rating": Student.rating,
    "max_rating": Student.max_rating,
    "last_synced": Student.last_synced_at,
    "reminders": Student.reminders_sent,
    "group": Student.group_name,
}


@dataclass(frozen=True, slots=True)
class StudentPage:
    students: Sequence[Student]
    total: int


@dataclass(frozen=True, slots=True)
class LatestReminder:
    claimed_at: datetime
    streak_start: datetime
    slot: int


@dataclass(frozen=True, slots=True)
class UnsentReminder:
    id: int
    state: str
    claimed_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class LastActivity:
    any_at: datetime | None
    accepted_at: datetime | None


def _upsert(session: AsyncSession, model: Any, keys: list[str]) -> Any:
    """An INSERT .. ON CONFLICT DO UPDATE of every non-key column, run with many rows.

    Built without values and executed with a list of rows: SQLAlchemy compiles it once
    and batches the rows ("insertmanyvalues"), far cheaper than a multi-VALUES literal.
    """
    table = cast(Table, model.__table__)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)


class StudentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # ------------------------------------------------------------ students

    def _visible(self, coach_id: int | None) -> Select[Any]:
        statement = select(Student)
        return statement if coach_id is None else statement.where(Student.coach_id == coach_id)

    async def page(
        self,
        coach_id: int | None,
        *,
        query: str = "",
        sort: str = "name",
        descending: bool = False,
        offset: int = 0,
        limit: int | None = 50,
    ) -> StudentPage:
        """`coach_id` None: every coach's students (admins)."""
        statement = self._visible(coach_id)
        if query:
            pattern = f"%{query.casefold()}%"
            statement = statement.where(
                or_(
                    func.lower(Student.name).like(pattern),
                    func.lower(Student.email).like(pattern),
                    Student.handle_key.like(pattern),
                    func.lower(Student.group_name).like(pattern),
                    Student.phone.like(pattern),
                )
            )
        total = await self._session.scalar(select(func.count()).select_from(statement.subquery()))
        column = SORTABLE.get(sort, Student.name)
        order = column.desc().nulls_last() if descending else column.asc().nulls_last()
        statement = statement.order_by(order, Student.id).offset(offset)
        if limit is not None:
            statement = statement.limit(limit)
        rows = (await self._session.scalars(statement)).all()
        return StudentPage(list(rows), int(total or 0))

    async def get(self, student_id: int, coach_id: int | None = None) -> Student | None:
        statement = self._visible(coach_id).where(Student.id == student_id)
        found: Student | None = (await self._session.scalars(statement)).first()
        return found

    async def by_handle(self, coach_id: int, handle: str) -> Student | None:
        statement = select(Student).where(
            Student.coach_id == coach_id, Student.handle_key == handle.casefold()
        )
        return (await self._session.scalars(statement)).first()

    async def for_sync(self, coach_id: int | None, ids: Sequence[int] | None) -> list[Student]:
        statement = self._visible(coach_id).order_by(Student.id)
        if ids is not None:
            statement = statement.where(Student.id.in_(ids))
        found: list[Student] = list((await self._session.scalars(statement)).all())
        return found

    async def of_coach(self, coach_id: int) -> list[Student]:
        return list(
            await self._session.scalars(select(Student).where(Student.coach_id == coach_id))
        )

    def add(self, student: Student) -> None:
        self._session.add(student)

    async def delete(self, student: Student) -> None:
        await self._session.delete(student)

    # ------------------------------------------------------------ codeforces rows

    async def forget_account_rows(self, student_id: int) -> None:
        """The submissions and ratings of the account a student tracked until now."""
        for model in (StudentSubmission, StudentRating):
            await self._session.execute(delete(model).where(model.student_id == student_id))

    async def upsert_submissions(self, student_id: int, submissions: Sequence[Submission]) -> int:
        rows = [submission_values(student_id, s) for s in submissions]
        for start in range(0, len(rows), CHUNK):
            await self._session.execute(
                _upsert(self._session, StudentSubmission, ["student_id", "id"]),
                rows[start : start + CHUNK],
            )
        return len(rows)

    async def replace_ratings(self, student_id: int, changes: Sequence[RatingChange]) -> None:
        """user.rating returns the whole history: it replaces what is stored."""
        await self._session.execute(
            delete(StudentRating).where(StudentRating.student_id == student_id)
        )
        rows = [
            {
                "student_id": student_id,
                "contest_id": c.contest_id,
                "contest_name": c.contest_name[:300],
                "rank": c.rank,
                "old_rating": c.old_rating,
                "new_rating": c.new_rating,
                "updated_at": c.updated_at,
            }
            for c in {change.contest_id: change for change in changes}.values()
        ]
        for start in range(0, len(rows), CHUNK):
            await self._session.execute(insert(StudentRating), rows[start : start + CHUNK])

    async def submission_rows(self, student_id: int) -> list[SubmissionRow]:
        columns = (
            StudentSubmission.id,
            StudentSubmission.created_at,
            StudentSubmission.contest_id,
            StudentSubmission.problem_index,
            StudentSubmission.problem_name,
            StudentSubmission.problem_rating,
            StudentSubmission.verdict,
        )
        result = await self._session.execute(
            select(*columns).where(StudentSubmission.student_id == student_id)
        )
        return [SubmissionRow(*row) for row in result.all()]

    async def rating_rows(self, student_id: int) -> list[RatingRow]:
        result = await self._session.execute(
            select(
                StudentRating.contest_id,
                StudentRating.contest_name,
                StudentRating.rank,
                StudentRating.old_rating,
                StudentRating.new_rating,
                StudentRating.updated_at,
            )
            .where(StudentRating.student_id == student_id)
            .order_by(StudentRating.updated_at)
        )
        return [RatingRow(*row) for row in result.all()]

    async def last_activity(self, student_id: int) -> LastActivity:
        mine = StudentSubmission.student_id == student_id
        any_at = await self._session.scalar(
            select(func.max(StudentSubmission.created_at)).where(mine)
        )
        accepted_at = await self._session.scalar(
            select(func.max(StudentSubmission.created_at)).where(
                mine, StudentSubmission.verdict == "OK"
            )
        )
        return LastActivity(_aware(any_at), _aware(accepted_at))

    # ------------------------------------------------------------ catalogue

    async def replace_catalogue(self, problems: Iterable[Problem]) -> int:
        rows = {
            (p.contest_id, p.index): {
                "contest_id": p.contest_id,
                "index": p.index[:16],
                "name": p.name[:300],
                "rating": p.rating,
                "tags": list(p.tags),
            }
            for p in problems
            if p.contest_id is not None
        }
        values = list(rows.values())
        for start in range(0, len(values), CHUNK):
            await self._session.execute(
                _upsert(self._session, CodeforcesProblem, ["contest_id", "index"]),
                values[start : start + CHUNK],
            )
        return len(values)

    async def catalogue_for(self, contest_ids: Iterable[int]) -> dict[int, list[CatalogueProblem]]:
        """The catalogue of these contests and their neighbours (Div. 1/2 twins are adjacent)."""
        wanted = sorted({c + d for c in contest_ids for d in (-1, 0, 1)})
        grouped: dict[int, list[CatalogueProblem]] = {}
        for start in range(0, len(wanted), CHUNK):
            result = await self._session.execute(
                select(
                    CodeforcesProblem.contest_id,
                    CodeforcesProblem.index,
                    CodeforcesProblem.name,
                    CodeforcesProblem.rating,
                ).where(CodeforcesProblem.contest_id.in_(wanted[start : start + CHUNK]))
            )
            for row in result.all():
                grouped.setdefault(row[0], []).append(CatalogueProblem(*row))
        return grouped

    # ------------------------------------------------------------ settings, runs

    async def settings_for(self, coach_id: int) -> StudentSettings | None:
        return await self._session.get(StudentSettings, coach_id)

    def add_settings(self, settings: StudentSettings) -> None:
        self._session.add(settings)

    async def recent_runs(self, coach_id: int | None, limit: int = 5) -> list[StudentSyncRun]:
        statement = select(StudentSyncRun).order_by(StudentSyncRun.id.desc()).limit(limit)
        if coach_id is not None:
            statement = statement.where(
                or_(StudentSyncRun.coach_id == coach_id, StudentSyncRun.coach_id.is_(None))
            )
        return list((await self._session.scalars(statement)).all())

    async def delete_runs_of(self, coach_id: int) -> None:
        """A deleted coach's sync history (the runs table has no foreign key to cascade)."""
        await self._session.execute(
            delete(StudentSyncRun).where(StudentSyncRun.coach_id == coach_id)
        )

    # ------------------------------------------------------------ reminders

    async def reminder(self, reminder_id: int) -> StudentReminder | None:
        return await self._session.get(StudentReminder, reminder_id)

    async def claim_reminder(self, reminder: StudentReminder) -> int:
        """Store a new claim; raises IntegrityError when another run claimed that slot."""
        self._session.add(reminder)
        await self._session.flush()
        return reminder.id

    async def unsent_reminders(
        self, student_ids: Sequence[int], max_attempts: int
    ) -> list[UnsentReminder]:
        """Failed or still pending claims of these students with attempts left."""
        rows = await self._session.execute(
            select(
                StudentReminder.id,
                StudentReminder.state,
                StudentReminder.claimed_at,
                StudentReminder.attempts,
            ).where(
                StudentReminder.student_id.in_(student_ids),
                StudentReminder.state.in_(("failed", "pending")),
                StudentReminder.attempts < max_attempts,
            )
        )
        return [UnsentReminder(*row) for row in rows.all()]

    async def close_abandoned_runs(self, scope: str, now: datetime, reason: str) -> datetime | None:
        """Fail the runs of `scope` still marked running (their holder died); when the
        earliest of them started, None when there were none."""
        abandoned = (StudentSyncRun.scope == scope, StudentSyncRun.state == "running")
        started = _aware(
            await self._session.scalar(
                select(func.min(StudentSyncRun.started_at)).where(*abandoned)
            )
        )
        if started is not None:
            await self._session.execute(
                update(StudentSyncRun)
                .where(*abandoned)
                .values(state="failed", finished_at=now, error=reason)
            )
        return started

    async def release_dead_claims(
        self, coach_id: int | None, ids: Sequence[int] | None, since: datetime, until: datetime
    ) -> int:
        """Mark failed the reminders of these students (as `for_sync` picks them) claimed
        between `since` and `until` and still pending, so the next run retries them at
        once instead of after their lease; how many.

        Only for claims whose holder is known dead: the caller holds the scope's lock
        and `since` is when the dead run of that scope started. Their delivery's outcome
        is unknown; the attempt the claim counted stays counted."""
        students = select(Student.id)
        if coach_id is not None:
            students = students.where(Student.coach_id == coach_id)
        if ids is not None:
            students = students.where(Student.id.in_(ids))
        result = await self._session.execute(
            update(StudentReminder)
            .where(
                StudentReminder.student_id.in_(students),
                StudentReminder.state == "pending",
                StudentReminder.claimed_at >= since,
                StudentReminder.claimed_at <= until,
            )
            .values(state="failed")
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def take_reminder(
        self, reminder_id: int, seen_attempts: int, now: datetime, lease_start_before: datetime
    ) -> bool:
        """Claim a failed reminder, or one whose sender's lease (begun before
        `lease_start_before`) ran out, with a new lease from `now`.

        Compare-and-set on the attempt count and the lease in one statement: of two runs
        retrying it, one wins, and the winner's fresh lease keeps every later run off it
        until the lease runs out in turn."""
        result = await self._session.execute(
            update(StudentReminder)
            .where(
                StudentReminder.id == reminder_id,
                StudentReminder.attempts == seen_attempts,
                or_(
                    StudentReminder.state == "failed",
                    and_(
                        StudentReminder.state == "pending",
                        StudentReminder.claimed_at < lease_start_before,
                    ),
                ),
            )
            .values(attempts=StudentReminder.attempts + 1, state="pending", claimed_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def latest_reminder(self, student_id: int) -> LatestReminder | None:
        """The newest claim, read in one statement so its time and slot agree."""
        row = (
            await self._session.execute(
                select(
                    StudentReminder.claimed_at, StudentReminder.streak_start, StudentReminder.slot
                )
                .where(StudentReminder.student_id == student_id)
                .order_by(StudentReminder.claimed_at.desc(), StudentReminder.slot.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        return LatestReminder(row[0], row[1], row[2])

    async def record_attempt(
        self, reminder: StudentReminder, at: datetime, *, error: str | None
    ) -> None:
        sent = error is None
        self._session.add(
            ReminderAttempt(
                reminder_id=reminder.id,
                student_id=reminder.student_id,
                at=at,
                kind=reminder.kind,
                result="sent" if sent else "failed",
                error=error,
            )
        )
        # In SQL, in this one transaction with the attempt: a reminder once sent stays
        # sent, whatever a slower sender of the same claim reports afterwards.
        marked = update(StudentReminder).where(
            StudentReminder.id == reminder.id, StudentReminder.state != "sent"
        )
        values = {"state": "sent", "sent_at": at} if sent else {"state": "failed"}
        await self._session.execute(marked.values(**values))
        if sent:
            # Counted in SQL, so two workers never lose an increment.
            await self._session.execute(
                update(Student)
                .where(Student.id == reminder.student_id)
                .values(reminders_sent=Student.reminders_sent + 1)
            )


def submission_values(student_id: int, submission: Submission) -> dict[str, Any]:
    problem = submission.problem
    return {
        "student_id": student_id,
        "id": submission.id,
        "contest_id": problem.contest_id
        if problem.contest_id is not None
        else submission.contest_id,
        "problem_index": problem.index[:16],
        "problem_name": problem.name[:300],
        "problem_rating": problem.rating,
        "tags": list(problem.tags),
        "verdict": (submission.verdict or "")[:40],
        "participant_type": (submission.author.participant_type or None),
        "language": (submission.programming_language or "")[:100] or None,
        "created_at": submission.created_at,
    }


def _aware(value: datetime | None) -> datetime | None:
    # func.max bypasses the column type on SQLite, which hands back a naive string/datetime.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

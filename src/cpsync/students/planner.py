"""Which Codeforces calls a student sync needs (pure).

One `user.info` lookup for everybody comes first; from it and each student's stored
state, `plan_sync` decides the fewest per-student calls:

- `user.status` only for a new student, one with verdicts still pending, or one who was
  online since their submissions were last fetched (nobody submits while offline);
- `user.rating` only for a new student or one whose rating moved.

`user.rating` returns the whole history, so a contest that left the rating unchanged
(delta 0) is picked up at the next change rather than lost.

Then `next_status_page` and `settle_submissions` drive the incremental `user.status`
paging: newest first, stop at the first submission already stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cpsync.students.codeforces_api import Submission, UserInfo, UserLookup


@dataclass(frozen=True, slots=True)
class StoredStudent:
    """What the database knows about one tracked student.

    `last_synced_at` is when the last successful sync of this student started (taken
    before its calls), whether or not it needed `user.status`: what the coach reads as
    "last synced". `last_online_at` is Codeforces' `lastOnlineTimeSeconds` as that sync
    saw it; any later value means activity since, even when Codeforces updated it late,
    so a skipped `user.status` never hides submissions.
    `newest_submission_id` is the resume point: every submission up to it is stored with
    a final verdict (see `settle_submissions`).
    """

    id: int
    handle: str
    last_synced_at: datetime | None
    newest_submission_id: int | None
    rating: int | None
    is_new: bool = False
    pending_verdicts: bool = False
    last_online_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    # Codeforces' clock and ours differ, and lastOnlineTimeSeconds may lag a little.
    online_slack: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class StudentPlan:
    student_id: int
    handle: str  # the current handle, to use for the calls
    info: UserInfo
    fetch_status: bool
    fetch_rating: bool
    # The stored spelling when it differs from the current one: store the new spelling.
    previous_handle: str | None = None

    @property
    def renamed(self) -> bool:
        """A real rename, as opposed to Codeforces spelling the same handle in other case."""
        return (
            self.previous_handle is not None
            and self.previous_handle.casefold() != self.handle.casefold()
        )


@dataclass(frozen=True, slots=True)
class SyncPlan:
    students: tuple[StudentPlan, ...]
    not_found: tuple[int, ...]  # student ids whose handle does not exist
    unresolved: tuple[int, ...]  # student ids with no answer (their lookup batch failed)

    @property
    def renamed(self) -> tuple[StudentPlan, ...]:
        return tuple(plan for plan in self.students if plan.renamed)

    @property
    def status_calls(self) -> int:
        return sum(plan.fetch_status for plan in self.students)

    @property
    def rating_calls(self) -> int:
        return sum(plan.fetch_rating for plan in self.students)


def plan_sync(
    students: Iterable[StoredStudent], lookup: UserLookup, config: PlannerConfig | None = None
) -> SyncPlan:
    config = config or PlannerConfig()
    plans: list[StudentPlan] = []
    not_found: list[int] = []
    unresolved: list[int] = []
    for student in students:
        info = lookup.get(student.handle)
        if info is not None:
            plans.append(plan_student(student, info, config))
        elif lookup.is_not_found(student.handle):
            not_found.append(student.id)
        else:
            unresolved.append(student.id)
    return SyncPlan(tuple(plans), tuple(not_found), tuple(unresolved))


def plan_student(student: StoredStudent, info: UserInfo, config: PlannerConfig) -> StudentPlan:
    return StudentPlan(
        student_id=student.id,
        handle=info.handle,
        info=info,
        fetch_status=needs_status(student, info, config),
        fetch_rating=student.is_new or info.rating != student.rating,
        previous_handle=student.handle if info.handle != student.handle else None,
    )


def needs_status(student: StoredStudent, info: UserInfo, config: PlannerConfig) -> bool:
    if student.is_new or student.pending_verdicts:
        return True
    if student.last_synced_at is None:
        return True
    if student.last_online_at is not None and info.last_online > student.last_online_at:
        return True  # online since the last sync looked, however late Codeforces said so
    # Not `newest_submission_id is None`: a student with no submissions at all would
    # then cost a call every sync.
    return info.last_online >= student.last_synced_at - config.online_slack


# ---------------------------------------------------------------- user.status paging


@dataclass(frozen=True, slots=True)
class PagingConfig:
    first_page: int = 100  # most syncs find a handful of new submissions
    first_page_new: int = 1000  # a new student's whole history is wanted anyway
    growth: int = 4
    max_page: int = 5000  # keeps one answer well under HttpClient's 10 MB cap


@dataclass(frozen=True, slots=True)
class PageRequest:
    from_: int
    count: int


@dataclass(frozen=True, slots=True)
class PageStep:
    """The not-yet-stored submissions of a page, and the page to ask for next (or None)."""

    fresh: tuple[Submission, ...]
    next_page: PageRequest | None


def first_status_page(newest_stored_id: int | None, config: PagingConfig) -> PageRequest:
    size = config.first_page_new if newest_stored_id is None else config.first_page
    return PageRequest(from_=1, count=min(size, config.max_page))


def next_status_page(
    request: PageRequest,
    page: Sequence[Submission],
    newest_stored_id: int | None,
    config: PagingConfig,
) -> PageStep:
    """Keep the submissions newer than the stored ones; stop at the first stored id.

    Offsets shift when a submission arrives between two pages, which can only repeat a
    submission on the next page, never skip one: callers deduplicate by id.
    """
    fresh = tuple(
        submission
        for submission in page
        if newest_stored_id is None or submission.id > newest_stored_id
    )
    reached_stored = len(fresh) < len(page)
    if reached_stored or len(page) < request.count:
        return PageStep(fresh, None)
    size = min(request.count * config.growth, config.max_page)
    return PageStep(fresh, PageRequest(from_=request.from_ + request.count, count=size))


@dataclass(frozen=True, slots=True)
class SettledSubmissions:
    """What to store after paging, and the new resume point."""

    final: tuple[Submission, ...]
    newest_submission_id: int | None
    pending_verdicts: bool


def settle_submissions(
    fetched: Iterable[Submission], newest_stored_id: int | None
) -> SettledSubmissions:
    """Final submissions to upsert; the resume point stays below any pending verdict.

    A submission still in queue or TESTING is not stored, and the resume point is kept
    just below it so the next sync fetches it again; final ones above it are re-fetched
    too and upserted again, which is harmless.
    """
    unique = {submission.id: submission for submission in fetched}
    pending = [sid for sid, submission in unique.items() if not submission.is_final]
    final = tuple(
        sorted(
            (submission for submission in unique.values() if submission.is_final),
            key=lambda submission: submission.id,
            reverse=True,
        )
    )
    if pending:
        below_pending = min(pending) - 1
        resume = below_pending if newest_stored_id is None else max(below_pending, newest_stored_id)
        return SettledSubmissions(final, resume, pending_verdicts=True)
    newest = max(unique, default=None)
    if newest_stored_id is not None and (newest is None or newest < newest_stored_id):
        newest = newest_stored_id
    return SettledSubmissions(final, newest, pending_verdicts=False)

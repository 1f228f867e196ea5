"""Student-tracking tables: students, their Codeforces rows, sync runs, reminders.

Rows, not blobs: one row per rating change and per submission, so pages read only what
they show. Students are keyed by id; `handle_key` (the casefolded handle) is unique per
coach. A reminder row is the claim that makes a reminder exactly-once: its unique key
(student, streak start, slot) is inserted before anything is sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cpsync.db import Base, UTCDateTime

DEFAULT_SYNC_CRON = "0 3 * * *"


class Student(Base):
    __tablename__ = "students"
    __table_args__ = (UniqueConstraint("coach_id", "handle_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    handle: Mapped[str] = mapped_column(String(64))
    handle_key: Mapped[str] = mapped_column(String(64))
    group_name: Mapped[str] = mapped_column(String(100), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    reminders_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # From Codeforces.
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rank: Mapped[str | None] = mapped_column(String(40), nullable=True)
    max_rank: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_online_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the last successful user.status fetch *started* (see planner.StoredStudent).
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_sync_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    newest_submission_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pending_verdicts: Mapped[bool] = mapped_column(Boolean, default=False)
    # True until the first successful sync: the planner then fetches everything.
    needs_full_sync: Mapped[bool] = mapped_column(Boolean, default=True)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)


class StudentRating(Base):
    __tablename__ = "student_ratings"

    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), primary_key=True
    )
    contest_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contest_name: Mapped[str] = mapped_column(String(300))
    rank: Mapped[int] = mapped_column(Integer)
    old_rating: Mapped[int] = mapped_column(Integer)
    new_rating: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StudentSubmission(Base):
    """One row per (student, submission id): team submissions belong to each member."""

    __tablename__ = "student_submissions"
    __table_args__ = (Index("ix_student_submissions_student_time", "student_id", "created_at"),)

    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    contest_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    problem_index: Mapped[str] = mapped_column(String(16))
    problem_name: Mapped[str] = mapped_column(String(300))
    problem_rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON)
    verdict: Mapped[str] = mapped_column(String(40))
    participant_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    language: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CodeforcesProblem(Base):
    """The `problemset.problems` catalogue (problems with a contest id)."""

    __tablename__ = "cf_problems"

    contest_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON)


class StudentSettings(Base):
    """Per coach: when their students sync, and how reminders behave."""

    __tablename__ = "student_settings"

    coach_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    sync_cron: Mapped[str] = mapped_column(String(100), default=DEFAULT_SYNC_CRON)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    inactive_days: Mapped[int] = mapped_column(Integer, default=7)
    accepted_only: Mapped[bool] = mapped_column(Boolean, default=False)
    repeat_every_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StudentSyncRun(Base):
    __tablename__ = "student_sync_runs"
    __table_args__ = (Index("ix_student_sync_runs_scope_state", "scope", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None: every coach's students.
    coach_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    trigger: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The lock the run held (`students.runtime.sync_scope`); None: a run without one (CLI).
    scope: Mapped[str | None] = mapped_column(String(300), nullable=True)


class StudentReminder(Base):
    """One reminder of one inactive streak; inserting it is the claim to send it."""

    __tablename__ = "student_reminders"
    __table_args__ = (UniqueConstraint("student_id", "streak_start", "slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), index=True
    )
    streak_start: Mapped[datetime] = mapped_column(UTCDateTime)
    slot: Mapped[int] = mapped_column(Integer)  # 0: first reminder, n: n-th repeat
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReminderAttempt(Base):
    """Every delivery attempt, successful or not."""

    __tablename__ = "student_reminder_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reminder_id: Mapped[int] = mapped_column(
        ForeignKey("student_reminders.id", ondelete="CASCADE"), index=True
    )
    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(20))
    result: Mapped[str] = mapped_column(String(20))  # sent | failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

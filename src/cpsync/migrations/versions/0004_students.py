"""students: students, ratings, submissions, problem catalogue, settings, runs, reminders

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cpsync.db import UTCDateTime

revision = "0004"
down_revision = "0002"
branch_labels = ("students",)
depends_on = None


def _fk(table: str, column: str, referred: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.id"],
        name=op.f(f"fk_{table}_{column}_{referred}"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "students",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coach_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.Column("handle_key", sa.String(length=64), nullable=False),
        sa.Column("group_name", sa.String(length=100), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("reminders_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("max_rating", sa.Integer(), nullable=True),
        sa.Column("rank", sa.String(length=40), nullable=True),
        sa.Column("max_rank", sa.String(length=40), nullable=True),
        sa.Column("last_online_at", UTCDateTime(), nullable=True),
        sa.Column("last_synced_at", UTCDateTime(), nullable=True),
        sa.Column("last_sync_error", sa.Text(), nullable=True),
        sa.Column("newest_submission_id", sa.Integer(), nullable=True),
        sa.Column("pending_verdicts", sa.Boolean(), nullable=False),
        sa.Column("needs_full_sync", sa.Boolean(), nullable=False),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        _fk("students", "coach_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_students")),
        sa.UniqueConstraint("coach_id", "handle_key", name=op.f("uq_students_coach_id_handle_key")),
    )
    op.create_index("ix_students_coach_id", "students", ["coach_id"])
    op.create_table(
        "student_ratings",
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("contest_name", sa.String(length=300), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("old_rating", sa.Integer(), nullable=False),
        sa.Column("new_rating", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("student_ratings", "student_id", "students"),
        sa.PrimaryKeyConstraint("student_id", "contest_id", name=op.f("pk_student_ratings")),
    )
    op.create_table(
        "student_submissions",
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("contest_id", sa.Integer(), nullable=True),
        sa.Column("problem_index", sa.String(length=16), nullable=False),
        sa.Column("problem_name", sa.String(length=300), nullable=False),
        sa.Column("problem_rating", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("verdict", sa.String(length=40), nullable=False),
        sa.Column("participant_type", sa.String(length=40), nullable=True),
        sa.Column("language", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("student_submissions", "student_id", "students"),
        sa.PrimaryKeyConstraint("student_id", "id", name=op.f("pk_student_submissions")),
    )
    op.create_index(
        "ix_student_submissions_student_time", "student_submissions", ["student_id", "created_at"]
    )
    op.create_table(
        "cf_problems",
        sa.Column("contest_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("index", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("contest_id", "index", name=op.f("pk_cf_problems")),
    )
    op.create_table(
        "student_settings",
        sa.Column("coach_id", sa.Integer(), nullable=False),
        sa.Column("sync_cron", sa.String(length=100), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("inactive_days", sa.Integer(), nullable=False),
        sa.Column("accepted_only", sa.Boolean(), nullable=False),
        sa.Column("repeat_every_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("student_settings", "coach_id", "users"),
        sa.PrimaryKeyConstraint("coach_id", name=op.f("pk_student_settings")),
    )
    op.create_table(
        "student_sync_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coach_id", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_student_sync_runs")),
    )
    op.create_index("ix_student_sync_runs_coach_id", "student_sync_runs", ["coach_id"])
    op.create_table(
        "student_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("streak_start", UTCDateTime(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        _fk("student_reminders", "student_id", "students"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_student_reminders")),
        sa.UniqueConstraint(
            "student_id",
            "streak_start",
            "slot",
            name=op.f("uq_student_reminders_student_id_streak_start_slot"),
        ),
    )
    op.create_index("ix_student_reminders_student_id", "student_reminders", ["student_id"])
    op.create_table(
        "student_reminder_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reminder_id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("result", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _fk("student_reminder_attempts", "reminder_id", "student_reminders"),
        _fk("student_reminder_attempts", "student_id", "students"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_student_reminder_attempts")),
    )
    op.create_index(
        "ix_student_reminder_attempts_reminder_id", "student_reminder_attempts", ["reminder_id"]
    )
    op.create_index(
        "ix_student_reminder_attempts_student_id", "student_reminder_attempts", ["student_id"]
    )


def downgrade() -> None:
    for table in (
        "student_reminder_attempts",
        "student_reminders",
        "student_sync_runs",
        "student_settings",
        "cf_problems",
        "student_submissions",
        "student_ratings",
        "students",
    ):
        op.drop_table(table)

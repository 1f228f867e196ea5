"""calendars: calendar links, pushed events, sync runs, sync requests, notifications

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cpsync.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = ("calendars",)
depends_on = None


def _fk(table: str, column: str, referred: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.id"],
        name=op.f(f"fk_{table}_{column}_{referred}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "calendar_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=1000), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("access_token_encrypted", sa.Text(), nullable=True),
        sa.Column("access_expires_at", UTCDateTime(), nullable=True),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("last_run_at", UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("reconnect_notified_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("calendar_links", "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_links")),
        sa.UniqueConstraint(
            "user_id", "kind", "target", name=op.f("uq_calendar_links_user_id_kind_target")
        ),
    )
    op.create_index(op.f("ix_calendar_links_user_id"), "calendar_links", ["user_id"])
    op.create_table(
        "calendar_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("external_id", sa.String(length=1100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("etag", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("calendar_events", "link_id", "calendar_links", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_events")),
        sa.UniqueConstraint(
            "link_id", "platform", "key", name=op.f("uq_calendar_events_link_id_platform_key")
        ),
    )
    op.create_index("ix_calendar_events_platform_key", "calendar_events", ["platform", "key"])
    op.create_table(
        "calendar_sync_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        _fk("calendar_sync_runs", "link_id", "calendar_links", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_sync_runs")),
    )
    op.create_index(
        "ix_calendar_sync_runs_link_id_started_at",
        "calendar_sync_runs",
        ["link_id", "started_at"],
    )
    op.create_table(
        "calendar_sync_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        _fk("calendar_sync_requests", "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_sync_requests")),
    )
    op.create_index(
        op.f("ix_calendar_sync_requests_user_id"), "calendar_sync_requests", ["user_id"]
    )
    op.create_table(
        "calendar_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        _fk("calendar_notifications", "user_id", "users", "CASCADE"),
        _fk("calendar_notifications", "link_id", "calendar_links", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_notifications")),
    )
    op.create_index(
        op.f("ix_calendar_notifications_user_id"), "calendar_notifications", ["user_id"]
    )


def downgrade() -> None:
    op.drop_table("calendar_notifications")
    op.drop_table("calendar_sync_requests")
    op.drop_table("calendar_sync_runs")
    op.drop_table("calendar_events")
    op.drop_table("calendar_links")

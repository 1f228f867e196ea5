"""Calendar sync tables: a user's calendar links, what was pushed into each, and runs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cpsync.db import Base, UTCDateTime


class LinkKind(StrEnum):
    GOOGLE = "google"
    CALDAV = "caldav"


class LinkState(StrEnum):
    ACTIVE = "active"
    NEEDS_RECONNECT = "needs_reconnect"  # credentials refused: not synced until reconnected


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RequestState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class CalendarLink(Base):
    """One calendar of one user that cpsync keeps in step with their contests."""

    __tablename__ = "calendar_links"
    __table_args__ = (UniqueConstraint("user_id", "kind", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # Google: the calendar id ("primary" or a dedicated calendar); CalDAV: the collection URL.
    target: Mapped[str] = mapped_column(String(1000))
    username: Mapped[str] = mapped_column(String(320), default="")  # CalDAV only
    # Google: the refresh token; CalDAV: the app password. Encrypted with the key ring.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # Google: the current access token, kept so an unchanged daily run costs one read.
    access_token_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    state: Mapped[str] = mapped_column(String(24), default=LinkState.ACTIVE)
    state_reason: Mapped[str] = mapped_column(Text, default="")
    cursor: Mapped[str | None] = mapped_column(Text, nullable=True)  # sync token / ctag
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Set when the "reconnect" email was queued; cleared on reconnect, so it goes out once.
    reconnect_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PushedEventRow(Base):
    """What cpsync last wrote (or tried to write) for one contest into one link."""

    __tablename__ = "calendar_events"
    __table_args__ = (
        UniqueConstraint("link_id", "platform", "key"),
        Index("ix_calendar_events_platform_key", "platform", "key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("calendar_links.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    external_id: Mapped[str] = mapped_column(String(1100))
    revision: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    etag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SyncRunRow(Base):
    """The result of one sync run of one link."""

    __tablename__ = "calendar_sync_runs"
    __table_args__ = (Index("ix_calendar_sync_runs_link_id_started_at", "link_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("calendar_links.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    # Tries of this run: an unavailable calendar is retried with backoff inside the run.
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class SyncRequest(Base):
    """A "sync now" asked for by a user; its id is the job id the API hands out."""

    __tablename__ = "calendar_sync_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=RequestState.QUEUED)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    summary: Mapped[str] = mapped_column(Text, default="")


class Notification(Base):
    """A message owed to a user. Sent by email when a sender is configured; recorded always."""

    __tablename__ = "calendar_notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("calendar_links.id", ondelete="SET NULL"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

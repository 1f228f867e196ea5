"""Contest tables."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cpsync.db import Base, UTCDateTime


class ContestStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class Contest(Base):
    """One contest per `(platform, key)`; a reschedule updates the row in place."""

    __tablename__ = "contests"
    __table_args__ = (
        UniqueConstraint("platform", "key"),
        Index("ix_contests_start", "start"),
        Index("ix_contests_end", "end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=ContestStatus.SCHEDULED)
    # Bumped whenever anything a calendar shows changes: name, times, url or status.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # First successful fetch that no longer listed it; cancellation waits a grace period.
    missing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PlatformHealth(Base):
    """How the last fetches of one platform went."""

    __tablename__ = "platform_health"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    contests_seen: Mapped[int] = mapped_column(Integer, default=0)
    items_skipped: Mapped[int] = mapped_column(Integer, default=0)
    last_skip_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

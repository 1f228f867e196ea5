"""A record of every background job run (contest refreshes for now), shown on /admin.

Every job ends in a final state: one a dead process left running is closed by the next
job of its kind (`start_job(..., supersedes=...)`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from cpsync.db import Base, Database, UTCDateTime


class JobState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default=JobState.RUNNING)
    summary: Mapped[str] = mapped_column(Text, default="")


INTERRUPTED = "Interrupted before it finished (its process stopped); a later run took over."


async def start_job(
    db: Database, kind: str, now: datetime, *, supersedes: str | None = None
) -> int:
    """Record a job as running; its id.

    With `supersedes`, the caller holds the lock that lets one job whose kind starts with
    it run at a time: such jobs still marked running were left by a process that died
    (kill -9), and are closed as failed first."""
    async with db.session() as session, session.begin():
        if supersedes is not None:
            await session.execute(
                update(Job)
                .where(Job.kind.startswith(supersedes), Job.state == JobState.RUNNING)
                .values(state=JobState.FAILED, summary=INTERRUPTED, finished_at=now)
            )
        job = Job(kind=kind, started_at=now, state=JobState.RUNNING, summary="")
        session.add(job)
        await session.flush()
        return job.id


async def finish_job(
    db: Database, job_id: int, state: JobState, summary: str, now: datetime
) -> None:
    async with db.session() as session, session.begin():
        job = await session.get(Job, job_id)
        if job is not None:
            job.state, job.summary, job.finished_at = state, summary[:4000], now


async def recent_jobs(session: AsyncSession, limit: int = 20) -> Sequence[Job]:
    query = select(Job).order_by(Job.started_at.desc(), Job.id.desc()).limit(limit)
    return (await session.scalars(query)).all()

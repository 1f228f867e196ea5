"""Every job row reaches a final state, also when the process running it was killed."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest

from cpsync.contests.recorded import JOB_KIND, recorded_refresh
from cpsync.contests.service import ContestService, RefreshReport
from cpsync.db import Database
from cpsync.jobs import INTERRUPTED, JobState, recent_jobs, start_job
from tests.recordings import RECORDED_AT, MutableClock


class ProcessKilledError(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing on the way out handles it."""


class Refreshes:
    """A contest service whose first refresh "dies" and whose next ones succeed."""

    def __init__(self) -> None:
        self.calls = 0

    async def refresh(self) -> list[RefreshReport]:
        self.calls += 1
        if self.calls == 1:
            raise ProcessKilledError
        return []


async def states(database: Database) -> list[tuple[str, str, str]]:
    async with database.session() as session:
        jobs = await recent_jobs(session)
        return [(job.kind, job.state, job.summary) for job in reversed(jobs)]


async def test_a_refresh_left_running_by_a_dead_process_is_closed_by_the_next(
    database: Database,
) -> None:
    clock = MutableClock(RECORDED_AT)
    contests = cast(ContestService, Refreshes())
    with pytest.raises(ProcessKilledError):
        await recorded_refresh(database, contests, clock)
    assert await states(database) == [(JOB_KIND, JobState.RUNNING, "")]

    clock.advance(timedelta(minutes=30))
    await recorded_refresh(database, contests, clock, manual=True)
    assert await states(database) == [
        (JOB_KIND, JobState.FAILED, INTERRUPTED),
        (f"{JOB_KIND} (manual)", JobState.SUCCEEDED, ""),
    ]


async def test_jobs_of_other_kinds_are_left_alone(database: Database) -> None:
    await start_job(database, "scheduler", RECORDED_AT)
    await start_job(database, JOB_KIND, RECORDED_AT, supersedes=JOB_KIND)
    assert await states(database) == [
        ("scheduler", JobState.RUNNING, ""),
        (JOB_KIND, JobState.RUNNING, ""),
    ]

"""The refresh schedule inside the server process, recorded as jobs."""

from __future__ import annotations

import asyncio

from cpsync.contests.service import ContestService
from cpsync.db import Database
from cpsync.http import HttpClient
from cpsync.jobs import JobState, recent_jobs
from cpsync.settings import Settings
from cpsync.web.scheduler import RefreshScheduler
from tests.recordings import MutableClock, serve_all
from tests.replay import ReplayServer, Reply


async def jobs(database: Database):
    async with database.session() as session:
        return list(await recent_jobs(session))


async def test_runs_at_start_when_stale_then_every_interval(
    database: Database, settings: Settings, clock: MutableClock, replay: ReplayServer
) -> None:
    serve_all(replay)
    housekeeping_runs: list[int] = []

    async def housekeeping() -> None:
        housekeeping_runs.append(1)

    async with HttpClient(settings) as http:
        contests = ContestService(database, http, settings, clock)
        scheduler = RefreshScheduler(database, contests, clock, 0.5 / 60, housekeeping=housekeeping)
        scheduler.start()
        try:
            for _ in range(200):
                if len([j for j in await jobs(database) if j.finished_at]) >= 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            await scheduler.stop()
    done = [job for job in await jobs(database) if job.finished_at]
    assert len(done) >= 2
    assert all(job.state == JobState.SUCCEEDED and job.kind == "contests.refresh" for job in done)
    assert "codeforces:" in done[0].summary
    assert len(housekeeping_runs) >= 2


async def test_one_run_at_a_time_and_failures_are_recorded(
    database: Database, settings: Settings, clock: MutableClock, replay: ReplayServer
) -> None:
    serve_all(replay, delay=0.3)
    replay.serve("leetcode", Reply(status=500))
    async with HttpClient(settings) as http:
        scheduler = RefreshScheduler(
            database, ContestService(database, http, settings, clock), clock, 0
        )
        assert scheduler.trigger()
        await asyncio.sleep(0.05)
        assert scheduler.running
        assert not scheduler.trigger()
        await scheduler.wait_idle()
        await scheduler.stop()
    [job] = await jobs(database)
    assert job.state == JobState.FAILED
    assert job.kind == "contests.refresh (manual)"
    assert "leetcode: failed" in job.summary
    assert "codeforces:" in job.summary

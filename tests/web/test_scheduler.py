"""The admin's manual refresh in the server process, recorded as jobs and fanned out."""

from __future__ import annotations

import asyncio

from cpsync.contests.service import ContestService, RefreshReport
from cpsync.db import Database
from cpsync.http import HttpClient
from cpsync.jobs import JobState, recent_jobs
from cpsync.settings import Settings
from cpsync.web.scheduler import ManualRefresh
from tests.recordings import MutableClock, serve_all
from tests.replay import ReplayServer, Reply


async def jobs(database: Database):
    async with database.session() as session:
        return list(await recent_jobs(session))


async def test_one_run_at_a_time_and_failures_are_recorded(
    database: Database, settings: Settings, clock: MutableClock, replay: ReplayServer
) -> None:
    serve_all(replay, delay=0.3)
    replay.serve("leetcode", Reply(status=500))
    async with HttpClient(settings) as http:
        refresh = ManualRefresh(database, ContestService(database, http, settings, clock), clock)
        assert refresh.trigger()
        while not refresh.running:  # the refresh task takes its lock on its first step
            await asyncio.sleep(0)
        assert not refresh.trigger()
        await refresh.wait_idle()
        await refresh.stop()
    [job] = await jobs(database)
    assert job.state == JobState.FAILED
    assert job.kind == "contests.refresh (manual)"
    assert "leetcode: failed" in job.summary
    assert "codeforces:" in job.summary


async def test_the_reports_reach_the_fan_out_hook(
    database: Database, settings: Settings, clock: MutableClock, replay: ReplayServer
) -> None:
    serve_all(replay)
    seen: list[list[RefreshReport]] = []

    async def hook(reports: list[RefreshReport]) -> None:
        seen.append(reports)

    async with HttpClient(settings) as http:
        refresh = ManualRefresh(database, ContestService(database, http, settings, clock), clock)
        refresh.on_refreshed = hook
        await refresh.run_once(manual=True)
    (reports,) = seen
    codeforces = next(r for r in reports if r.platform == "codeforces")
    assert codeforces.changes  # every contest was new: the calendars must hear of them

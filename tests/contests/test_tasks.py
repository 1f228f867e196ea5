"""The `contests.refresh` task: recorded as a job, one at a time across processes (a
request while one runs folds into one more run), and the changes handed to the calendar
fan-out by task name."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cpsync.contests import tasks
from cpsync.contests.service import refresh_running
from cpsync.db import Database
from cpsync.jobs import JobState, recent_jobs
from cpsync.resources import Resources, open_resources
from cpsync.settings import Settings
from tests.recordings import RECORDED_AT, MutableClock, serve_all
from tests.replay import ReplayServer, Reply


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(RECORDED_AT)


@pytest.fixture
async def resources(
    settings: Settings, clock: MutableClock, database: Database
) -> AsyncIterator[Resources]:
    """On the emptied database (`database` empties it)."""
    async with open_resources(settings, clock=clock) as opened:
        yield opened


def record_fan_outs(resources: Resources) -> list[list[list[str]]]:
    """What reaches `calendars.fan_out`, which this process has no calendars to run."""
    seen: list[list[list[str]]] = []

    @resources.broker.broker.task(task_name=tasks.CHANGED)
    async def fan_out(changed: list[list[str]]) -> None:
        seen.append(changed)

    return seen


async def jobs(database: Database):
    async with database.session() as session:
        return list(await recent_jobs(session))


async def test_a_refresh_asked_for_while_one_runs_folds_into_one_more_run(
    resources: Resources, replay: ReplayServer
) -> None:
    serve_all(replay, delay=0.3)
    replay.serve("leetcode", Reply(status=500))
    record_fan_outs(resources)
    first = asyncio.create_task(tasks.refresh(resources, manual=True))
    while not await refresh_running(resources.cache):  # its first step takes the flag
        await asyncio.sleep(0)
    assert await tasks.refresh(resources, manual=True) == 0  # left to the running one
    assert await first == 2  # its own run and the one asked for meanwhile
    assert not await refresh_running(resources.cache)
    runs = await jobs(resources.db)
    assert [job.state for job in runs] == [JobState.FAILED, JobState.FAILED]
    assert all(job.kind == "contests.refresh (manual)" for job in runs)
    assert "leetcode: failed" in runs[0].summary
    assert "codeforces:" in runs[0].summary


async def test_the_changes_reach_the_calendar_fan_out_by_task_name(
    resources: Resources, replay: ReplayServer
) -> None:
    serve_all(replay)
    seen = record_fan_outs(resources)
    assert await tasks.refresh(resources) == 1
    await resources.broker.wait_idle()
    (changed,) = seen
    # Every contest was new: the calendars must hear of each, named by (platform, key).
    assert any(platform == "codeforces" for platform, _key in changed)

"""The thin task layer: fan-out after a refresh, the daily reconciliation, the schedule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cpsync.calendars import tasks
from cpsync.calendars.config import calendar_service
from cpsync.contests.merge import ChangeKind
from cpsync.contests.service import RefreshReport
from cpsync.contests.tasks import changed_keys
from cpsync.resources import Resources, open_resources
from cpsync.scheduler import all_jobs
from cpsync.settings import Settings
from tests.calendars.fake_google import FakeGoogleServer
from tests.calendars.service_support import NOW, add_contests, add_user


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        outbound_allow_private=True,  # the fake Google listens on 127.0.0.1
        **values,
    )


@pytest.fixture
async def resources(
    tmp_path: Path, google_server: FakeGoogleServer
) -> AsyncIterator[tuple[Resources, list[tuple[int, bool]]]]:
    settings = _settings(
        tmp_path,
        google_client_id="client-id",
        google_client_secret="client-secret",
        google_api_base_url=google_server.base_url,
        google_token_url=google_server.token_url,
        http_backoff_seconds=0.01,
    )
    kicked: list[tuple[int, bool]] = []
    async with open_resources(settings, clock=lambda: NOW) as opened:

        @opened.broker.broker.task(task_name=tasks.SYNC_USER)
        async def record(user_id: int, check_remote: bool = False) -> None:
            kicked.append((user_id, check_remote))

        yield opened, kicked


async def test_fan_out_queues_only_the_concerned_users(resources: Any) -> None:
    resources, kicked = resources
    await add_contests(resources.db)
    coder = await add_user(resources.db, "cf@example.org", platforms=["codeforces"])
    other = await add_user(resources.db, "lc@example.org", platforms=["leetcode"])
    for user_id in (coder, other):
        await calendar_service(resources).connect_google(user_id, "refresh-1", dedicated_name="C")
    reports = [RefreshReport("codeforces", changes=[("2050", ChangeKind.RESCHEDULED)])]

    queued = await tasks.fan_out(resources, changed_keys(reports))
    await resources.broker.wait_idle()

    assert queued == [coder]
    assert kicked == [(coder, False)]


async def test_reconciliation_checks_every_linked_user(resources: Any) -> None:
    resources, kicked = resources
    first = await add_user(resources.db, "a@example.org")
    second = await add_user(resources.db, "b@example.org")
    await add_user(resources.db, "no-calendar@example.org")
    for user_id in (first, second):
        await calendar_service(resources).connect_google(user_id, "refresh-1", dedicated_name="C")

    assert await tasks.reconcile_all(resources) == 2
    await resources.broker.wait_idle()

    assert sorted(kicked) == [(first, True), (second, True)]


async def test_one_job_list_has_every_domain_s_periodic_jobs(tmp_path: Path) -> None:
    settings = _settings(tmp_path, queue_name="q1", refresh_interval_minutes=30)
    async with open_resources(settings) as resources:
        jobs = {job.name: job for job in await all_jobs(resources)()}

    assert set(jobs) == {
        "q1:calendars.reconcile_all",
        "q1:calendars.requeue_stale",
        "q1:contests.refresh",
        "q1:sessions.prune",
    }
    assert jobs["q1:contests.refresh"].every is not None
    assert jobs["q1:calendars.reconcile_all"].cron is not None

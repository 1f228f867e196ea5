"""The thin task layer: fan-out after a refresh, the daily reconciliation, the schedule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from taskiq import InMemoryBroker

from cpsync.cache import MemoryCache
from cpsync.calendars import tasks
from cpsync.calendars.service import CalendarOptions
from cpsync.contests.merge import ChangeKind
from cpsync.contests.service import RefreshReport
from cpsync.db import Database, open_database
from cpsync.http import HttpClient
from cpsync.locks import MemoryLocks
from cpsync.notify.email import DisabledMailer
from cpsync.settings import Settings
from tests.calendars.fake_google import FakeGoogleServer
from tests.calendars.service_support import (
    NOW,
    ServiceKit,
    add_contests,
    add_user,
    google_config,
    keyring,
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
    )
    database = await open_database(settings)
    yield database
    await database.dispose()


@pytest.fixture
async def resources(
    db: Database, http: HttpClient, google_server: FakeGoogleServer
) -> tuple[tasks.TaskResources, list[tuple[int, bool]]]:
    options = CalendarOptions(google=google_config(google_server.base_url, google_server.token_url))
    kit = ServiceKit(db, http, keyring(), MemoryLocks(), MemoryCache(), options)
    broker = InMemoryBroker()
    kicked: list[tuple[int, bool]] = []

    @broker.task(task_name=tasks.SYNC_USER)
    async def record(user_id: int, check_remote: bool = False) -> None:
        kicked.append((user_id, check_remote))

    resources = tasks.TaskResources(
        Settings(_env_file=None),  # type: ignore[call-arg]
        lambda: NOW,
        db,
        MemoryCache(),
        kit.locks,
        kit.service(),
        None,  # type: ignore[arg-type]  # contests are not refreshed here
        broker,
        DisabledMailer(),
    )
    return resources, kicked


async def test_fan_out_queues_only_the_concerned_users(resources: Any) -> None:
    resources, kicked = resources
    await add_contests(resources.db)
    coder = await add_user(resources.db, "cf@example.org", platforms=["codeforces"])
    other = await add_user(resources.db, "lc@example.org", platforms=["leetcode"])
    for user_id in (coder, other):
        await resources.calendars.connect_google(user_id, "refresh-1", dedicated_name="C")
    reports = [RefreshReport("codeforces", changes=[("2050", ChangeKind.RESCHEDULED)])]

    queued = await tasks.fan_out(resources, tasks.changed_keys(reports))
    await resources.broker.wait_all()

    assert queued == [coder]
    assert kicked == [(coder, False)]


async def test_reconciliation_checks_every_linked_user(resources: Any) -> None:
    resources, kicked = resources
    first = await add_user(resources.db, "a@example.org")
    second = await add_user(resources.db, "b@example.org")
    await add_user(resources.db, "no-calendar@example.org")
    for user_id in (first, second):
        await resources.calendars.connect_google(user_id, "refresh-1", dedicated_name="C")

    assert await tasks.reconcile_all(resources) == 2
    await resources.broker.wait_all()

    assert sorted(kicked) == [(first, True), (second, True)]


def test_schedule_has_refresh_and_daily_reconciliation() -> None:
    settings = Settings(_env_file=None, queue_name="q1", refresh_interval_minutes=30)  # type: ignore[call-arg]
    jobs = {job.name: job for job in tasks.scheduled_jobs(InMemoryBroker(), settings)}

    assert set(jobs) == {"q1:calendars.reconcile_all", "q1:contests.refresh"}
    assert jobs["q1:contests.refresh"].every is not None
    assert jobs["q1:calendars.reconcile_all"].cron is not None

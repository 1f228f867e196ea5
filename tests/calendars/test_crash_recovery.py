"""A "sync now" whose worker was killed mid-sync still reaches a final state.

A real `cpsync worker` process (Redis or RabbitMQ broker, PostgreSQL, Redis locks, the
fake Google API over HTTP) is killed with SIGKILL while it syncs a user's calendar.
The killed run had marked the user's request `running`; the task, delivered again to
a second worker, must adopt it: afterwards the calendar holds the desired events and
every request and run row is final.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cpsync.accounts.crypto import generate_key_spec, parse_keys
from cpsync.calendars.models import (
    CalendarLink,
    LinkKind,
    LinkState,
    RequestState,
    RunStatus,
    SyncRequest,
    SyncRunRow,
)
from cpsync.db import Database, open_database
from cpsync.queue import kick, make_broker
from cpsync.settings import Settings
from tests.calendars.fake_google import FakeGoogle, FakeGoogleServer, fake_google_server
from tests.calendars.service_support import NOW, add_contests, add_user
from tests.conftest import delete_rabbitmq_queues
from tests.waiting import wait_until
from tests.worker_processes import kill_hard, settings_of, start_worker

CONTESTS = [("codeforces", str(3100 + n), n % 9) for n in range(20)]
REFRESH_TOKEN = "refresh-crash"
CALENDAR = "cal-crash"


class SlowGoogle(FakeGoogle):
    """Each call takes a little while, so the kill lands in the middle of the sync."""

    def api(self, *args: Any, **kwargs: Any) -> tuple[int, bytes, dict[str, str]]:
        time.sleep(0.05)
        return super().api(*args, **kwargs)


@pytest.fixture(params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def google() -> Iterator[FakeGoogleServer]:
    with fake_google_server(SlowGoogle(refresh_tokens={REFRESH_TOKEN})) as server:
        yield server


@pytest.fixture
def env(
    broker_url: str,
    redis_url: str,
    queue_name: str,
    postgres_url: str,
    google: FakeGoogleServer,
    tmp_path: Path,
) -> Iterator[dict[str, str]]:
    yield dict(
        os.environ,
        CPSYNC_DATABASE_URL=postgres_url,
        CPSYNC_CACHE_URL=redis_url,
        CPSYNC_BROKER_URL=broker_url,
        CPSYNC_QUEUE_NAME=queue_name,
        CPSYNC_QUEUE_REDELIVER_SECONDS="3",
        CPSYNC_ENCRYPTION_KEYS=generate_key_spec("test"),
        CPSYNC_DATA_DIR=str(tmp_path),
        CPSYNC_GOOGLE_CLIENT_ID="client-id",
        CPSYNC_GOOGLE_CLIENT_SECRET="client-secret",
        CPSYNC_GOOGLE_TOKEN_URL=google.token_url,
        CPSYNC_GOOGLE_API_BASE_URL=google.base_url,
        CPSYNC_CALENDAR_LOCK_TTL_SECONDS="4",
        CPSYNC_CALENDAR_BATCH_SIZE="1",  # one call per event: many moments to die in
        CPSYNC_HTTP_BACKOFF_SECONDS="0.05",
        CPSYNC_REFRESH_INTERVAL_MINUTES="0",
    )
    if broker_url.startswith("amqp"):
        asyncio.run(delete_rabbitmq_queues(broker_url, queue_name))


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        kill_hard(process)


async def seed(settings: Settings, google: FakeGoogleServer) -> tuple[int, str]:
    """One user with a Google calendar and a "sync now" request: (user id, request id)."""
    db = await open_database(settings)
    try:
        async with db.engine.begin() as connection:
            for table in ("calendar_links", "contests", "users"):
                await connection.exec_driver_sql(f'DELETE FROM "{table}"')
        await add_contests(db, CONTESTS)
        user_id = await add_user(db, "crash@example.org", platforms=["codeforces"])
        google.fake.calendars[CALENDAR] = {}
        secret = parse_keys(settings.encryption_keys).encrypt(
            REFRESH_TOKEN, "calendar_links.secret"
        )
        request_id = secrets.token_hex(16)
        async with db.session() as session, session.begin():
            session.add(
                CalendarLink(
                    user_id=user_id,
                    kind=LinkKind.GOOGLE,
                    target=CALENDAR,
                    username="",
                    secret_encrypted=secret,
                    state=LinkState.ACTIVE,
                    state_reason="",
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            session.add(
                SyncRequest(
                    id=request_id,
                    user_id=user_id,
                    state=RequestState.QUEUED,
                    requested_at=NOW,
                    summary="",
                )
            )
        return user_id, request_id
    finally:
        await db.dispose()


async def enqueue_sync(settings: Settings, user_id: int) -> None:
    broker = make_broker(settings)
    await broker.startup()
    try:
        await kick(broker, "calendars.sync_user", user_id, True)
    finally:
        await broker.shutdown()


async def rows(settings: Settings) -> tuple[str, int]:
    """The request's state and how many run rows are still running."""
    db: Database = await open_database(settings, migrate=False)
    try:
        async with db.session() as session:
            state = (await session.scalars(select(SyncRequest.state))).one()
            running = await session.scalar(
                select(func.count())
                .select_from(SyncRunRow)
                .where(SyncRunRow.status == RunStatus.RUNNING)
            )
            return state, int(running or 0)
    finally:
        await db.dispose()


def test_a_request_left_running_by_a_killed_worker_is_finished_by_the_redelivery(
    env: dict[str, str], google: FakeGoogleServer, workers: list[subprocess.Popen[bytes]]
) -> None:
    settings = settings_of(env)
    user_id, _request_id = asyncio.run(seed(settings, google))
    start_worker(env, workers)
    asyncio.run(enqueue_sync(settings, user_id))

    assert wait_until(lambda: google.fake.writes() >= 2, 60), "the sync did not start"
    kill_hard(workers[0])  # mid-sync: the request says running, and so does its run
    assert asyncio.run(rows(settings)) == (RequestState.RUNNING, 1)
    assert len(google.fake.live_events(CALENDAR)) < len(CONTESTS)

    start_worker(env, workers)
    assert wait_until(lambda: asyncio.run(rows(settings))[1] == 0, 90), "a run stayed running"
    assert wait_until(lambda: asyncio.run(rows(settings))[0] == RequestState.SUCCEEDED, 30), (
        asyncio.run(rows(settings))
    )
    assert len(google.fake.live_events(CALENDAR)) == len(CONTESTS)

"""Syncs whose task the broker lost are queued again from the database.

The database records every "sync now" and every run as it starts; the broker may lose
the task carrying it (a Redis without persistence restarted during an outage, a worker
stopped mid-run). The calendars' periodic job, fired as `cpsync scheduler` fires it,
finds what stayed queued or running past the redelivery time and queues the user's
sync again: it runs, and every row reaches a final state.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cpsync.calendars.config import calendar_service
from cpsync.calendars.models import RequestState, RunStatus, SyncRequest, SyncRunRow
from cpsync.cron import ScheduledJob
from cpsync.locks import new_owner
from cpsync.resources import Resources
from cpsync.scheduler import all_jobs
from cpsync.settings import Settings
from cpsync.worker import open_process
from tests.calendars.fake_google import FakeGoogleServer
from tests.calendars.service_support import NOW, add_contests, add_user

REDELIVER_SECONDS = 60.0
# Codeforces and AtCoder contests of the starter set: the users' default platforms.
STARTER_EVENTS = 5


@pytest.fixture
async def resources(tmp_path: Path, google_server: FakeGoogleServer) -> AsyncIterator[Resources]:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        outbound_allow_private=True,  # the fake Google listens on 127.0.0.1
        google_client_id="client-id",
        google_client_secret="client-secret",
        google_api_base_url=google_server.base_url,
        google_token_url=google_server.token_url,
        http_backoff_seconds=0.01,
        queue_redeliver_seconds=REDELIVER_SECONDS,
    )
    async with open_process(settings, clock=lambda: NOW) as opened:
        await add_contests(opened.db)
        yield opened


async def _requeue_job(resources: Resources) -> ScheduledJob:
    jobs = {job.name: job for job in await all_jobs(resources)()}
    return jobs[f"{resources.settings.queue_name}:calendars.requeue_stale"]


async def _linked_user(resources: Resources, email: str) -> tuple[int, int]:
    user_id = await add_user(resources.db, email)
    return user_id, await calendar_service(resources).connect_google(user_id, "refresh-1")


async def _left_by_lost_task(
    resources: Resources, user_id: int, link_id: int, since: datetime, state: RequestState
) -> str:
    """What a run (or request) whose task was lost leaves: rows, and nothing queued."""
    request_id = secrets.token_hex(16)
    async with resources.db.session() as session, session.begin():
        session.add(SyncRequest(id=request_id, user_id=user_id, state=state, requested_at=since))
        if state == RequestState.RUNNING:
            session.add(SyncRunRow(link_id=link_id, started_at=since, status=RunStatus.RUNNING))
    return request_id


async def _request_state(resources: Resources, request_id: str) -> str:
    async with resources.db.session() as session:
        request = await session.get(SyncRequest, request_id)
        assert request is not None
        return request.state


async def _run_states(resources: Resources, link_id: int) -> list[str]:
    async with resources.db.session() as session:
        rows = await session.scalars(
            select(SyncRunRow.status).where(SyncRunRow.link_id == link_id).order_by(SyncRunRow.id)
        )
        return list(rows.all())


@pytest.mark.parametrize("state", [RequestState.RUNNING, RequestState.QUEUED])
async def test_a_sync_whose_task_was_lost_runs_and_finishes(
    resources: Resources, google_server: FakeGoogleServer, state: RequestState
) -> None:
    user_id, link_id = await _linked_user(resources, "lost@example.org")
    stale = NOW - timedelta(seconds=REDELIVER_SECONDS + 1)
    request_id = await _left_by_lost_task(resources, user_id, link_id, stale, state)

    await (await _requeue_job(resources)).fire()
    await resources.broker.wait_idle()

    assert await _request_state(resources, request_id) == RequestState.SUCCEEDED
    runs = await _run_states(resources, link_id)
    assert runs[-1] == RunStatus.SUCCEEDED
    assert RunStatus.RUNNING not in runs
    assert len(google_server.fake.live_events()) == STARTER_EVENTS


async def test_fresh_requests_and_live_runs_are_left_to_their_tasks(
    resources: Resources, google_server: FakeGoogleServer
) -> None:
    fresh_user, fresh_link = await _linked_user(resources, "fresh@example.org")
    busy_user, busy_link = await _linked_user(resources, "busy@example.org")
    recent = NOW - timedelta(seconds=REDELIVER_SECONDS - 1)
    stale = NOW - timedelta(seconds=REDELIVER_SECONDS + 1)
    fresh = await _left_by_lost_task(resources, fresh_user, fresh_link, recent, RequestState.QUEUED)
    busy = await _left_by_lost_task(resources, busy_user, busy_link, stale, RequestState.RUNNING)
    # A live run holds the user's lock (and ends its own rows).
    service = calendar_service(resources)
    assert await resources.locks.acquire(service.lock_name(busy_user), new_owner(), 600)

    await (await _requeue_job(resources)).fire()
    await resources.broker.wait_idle()

    assert await _request_state(resources, fresh) == RequestState.QUEUED
    assert await _request_state(resources, busy) == RequestState.RUNNING
    assert google_server.fake.writes() == 0

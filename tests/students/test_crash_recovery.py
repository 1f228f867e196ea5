"""A student sync whose worker was killed mid-run: the redelivered task takes over.

A real `cpsync worker` process (Redis or RabbitMQ broker, PostgreSQL, Redis locks,
Codeforces simulated over HTTP and paced so a run takes a while) is killed with SIGKILL
in the middle of a sync. The task, delivered again to a second worker, waits for the
dead run's lock to lapse, closes the row the dead run left `running`, and syncs: every
run row ends final, and every student is synced.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from cpsync.accounts.crypto import generate_key_spec
from cpsync.db import Base, open_database
from cpsync.queue import kick, make_broker
from cpsync.settings import Settings
from cpsync.students.models import Student, StudentSyncRun
from cpsync.students.sync import INTERRUPTED
from tests.conftest import delete_rabbitmq_queues
from tests.waiting import wait_until
from tests.worker_processes import kill_hard, settings_of, start_worker

from .simulated_codeforces import IdSource, SimulatedCodeforces, generate_user, serve_http
from .support import add_coach, add_student

HANDLES = [f"student{n}" for n in range(6)]


@pytest.fixture(params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def codeforces() -> Iterator[tuple[SimulatedCodeforces, str]]:
    sim = SimulatedCodeforces()
    rng, ids, now = random.Random(5), IdSource(), int(time.time())
    for handle in HANDLES:
        sim.add(generate_user(rng, ids, handle, submissions=10, now=now, problems=sim.problems))
    with serve_http(sim) as url:
        yield sim, url


@pytest.fixture
def env(
    broker_url: str,
    redis_url: str,
    queue_name: str,
    postgres_url: str,
    codeforces: tuple[SimulatedCodeforces, str],
    tmp_path: Path,
) -> Iterator[dict[str, str]]:
    yield dict(
        os.environ,
        CPSYNC_DATA_DIR=str(tmp_path),
        CPSYNC_DATABASE_URL=postgres_url,
        CPSYNC_CACHE_URL=redis_url,
        CPSYNC_BROKER_URL=broker_url,
        CPSYNC_QUEUE_NAME=queue_name,
        CPSYNC_QUEUE_REDELIVER_SECONDS="3",
        CPSYNC_STUDENTS_SYNC_LOCK_SECONDS="4",
        CPSYNC_ENCRYPTION_KEYS=generate_key_spec("test"),
        CPSYNC_CODEFORCES_BASE_URL=codeforces[1],
        # Paced, so a run of six students lasts seconds: time for the kill to land in it.
        CPSYNC_CODEFORCES_INTERVAL_SECONDS="0.4",
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


async def seed(settings: Settings) -> int:
    """An emptied database with a coach who has the students."""
    db = await open_database(settings)
    try:
        async with db.engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
        coach = await add_coach(db)
        for handle in HANDLES:
            await add_student(db, coach, handle, created_at=datetime.now(UTC))
        return coach
    finally:
        await db.dispose()


async def enqueue_sync(settings: Settings, coach: int) -> None:
    broker = make_broker(settings)
    await broker.startup()
    try:
        await kick(broker, "students.sync", coach, None, "schedule")
    finally:
        await broker.shutdown()


async def runs_and_synced(settings: Settings) -> tuple[list[tuple[str, str | None]], int]:
    """(state, error) of every run, oldest first, and how many students have synced."""
    db = await open_database(settings, migrate=False)
    try:
        async with db.session() as session:
            runs = await session.scalars(select(StudentSyncRun).order_by(StudentSyncRun.id))
            states = [(run.state, run.error) for run in runs]
            students = await session.scalars(select(Student))
            synced = sum(1 for student in students if student.last_synced_at is not None)
            return states, synced
    finally:
        await db.dispose()


def test_a_run_left_running_by_a_killed_worker_is_closed_and_redone(
    env: dict[str, str],
    codeforces: tuple[SimulatedCodeforces, str],
    workers: list[subprocess.Popen[bytes]],
) -> None:
    sim, _url = codeforces
    settings = settings_of(env)
    coach = asyncio.run(seed(settings))
    start_worker(env, workers)
    asyncio.run(enqueue_sync(settings, coach))

    def midway() -> bool:
        runs, synced = asyncio.run(runs_and_synced(settings))
        return runs == [("running", None)] and 1 <= synced < len(HANDLES)

    assert wait_until(midway, 90), asyncio.run(runs_and_synced(settings))
    kill_hard(workers[0])

    start_worker(env, workers)
    finished = [("failed", INTERRUPTED), ("done", None)]
    assert wait_until(lambda: asyncio.run(runs_and_synced(settings))[0] == finished, 120), (
        asyncio.run(runs_and_synced(settings)),
        sim.total_calls,
    )
    assert asyncio.run(runs_and_synced(settings))[1] == len(HANDLES)

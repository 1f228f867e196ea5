"""Calendar sync on the machine's Redis and RabbitMQ with real worker processes.

Two `cpsync worker` processes and one scheduler process share a
PostgreSQL database, Redis locks and the fake Google API. A worker is killed with
SIGKILL in the middle of syncs, in repeated trials; afterwards every user's calendar
holds exactly the desired events: no duplicates, none missing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from cpsync.accounts.crypto import generate_key_spec, parse_keys
from cpsync.calendars import tasks as calendar_tasks
from cpsync.calendars.models import CalendarLink, LinkKind, LinkState
from cpsync.contests.models import ContestStatus
from cpsync.cron import ScheduledJob
from cpsync.db import Database, open_database
from cpsync.locks import open_locks
from cpsync.queue import LazyBroker, kick, make_broker
from cpsync.scheduler import Scheduler
from cpsync.settings import Settings
from tests.calendars.fake_google import FakeGoogle, FakeGoogleServer, fake_google_server
from tests.calendars.service_support import (
    FIRST_START,
    NOW,
    add_contests,
    add_user,
    change_contest,
)
from tests.conftest import REPO_ROOT, delete_rabbitmq_queues
from tests.recordings import MutableClock
from tests.waiting import wait_until

USERS = 6
CONTESTS = [("codeforces", str(2100 + n), n % 9) for n in range(24)]
TRIALS = 3


class SlowGoogle(FakeGoogle):
    """Each call takes a little time, so a kill lands in the middle of syncs."""

    def api(self, *args: Any, **kwargs: Any) -> tuple[int, bytes, dict[str, str]]:
        time.sleep(0.01)
        return super().api(*args, **kwargs)


@pytest.fixture(params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    """The broker under test; Redis holds the locks either way."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def google() -> Iterator[FakeGoogleServer]:
    fake = SlowGoogle(refresh_tokens={f"refresh-{n}" for n in range(USERS + 1)})
    with fake_google_server(fake) as server:
        yield server


@dataclass
class Deployment:
    env: dict[str, str]
    settings: Settings
    processes: list[subprocess.Popen[bytes]]

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def worker(self) -> subprocess.Popen[bytes]:
        # `cpsync worker` execs `taskiq worker cpsync.worker:worker_broker` (ack when executed).
        return self.start("-c", "from cpsync.cli import app; app()", "worker")

    def scheduler(self) -> subprocess.Popen[bytes]:
        return self.start("-c", "from cpsync.cli import app; app()", "scheduler")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture
def deployment(
    broker_url: str,
    redis_url: str,
    queue_name: str,
    postgres_url: str,
    google: FakeGoogleServer,
    tmp_path: Path,
) -> Iterator[Deployment]:
    queue = queue_name
    env = dict(
        os.environ,
        CPSYNC_DATABASE_URL=postgres_url,
        CPSYNC_CACHE_URL=redis_url,
        CPSYNC_BROKER_URL=broker_url,
        CPSYNC_QUEUE_NAME=queue,
        CPSYNC_QUEUE_REDELIVER_SECONDS="3",
        CPSYNC_QUEUE_RETRY_DELAY_SECONDS="1",
        CPSYNC_ENCRYPTION_KEYS=generate_key_spec("test"),
        CPSYNC_DATA_DIR=str(tmp_path),
        CPSYNC_GOOGLE_CLIENT_ID="client-id",
        CPSYNC_GOOGLE_CLIENT_SECRET="client-secret",
        CPSYNC_GOOGLE_TOKEN_URL=google.token_url,
        CPSYNC_GOOGLE_API_BASE_URL=google.base_url,
        CPSYNC_CALENDAR_LOCK_TTL_SECONDS="4",
        CPSYNC_HTTP_BACKOFF_SECONDS="0.05",
        CPSYNC_REFRESH_INTERVAL_MINUTES="0",
        CPSYNC_RECONCILE_CRON="* * * * *",
    )
    settings = Settings.model_validate(
        {
            "database_url": postgres_url,
            "broker_url": broker_url,
            "queue_name": queue,
            "encryption_keys": env["CPSYNC_ENCRYPTION_KEYS"],
        }
    )
    running = Deployment(env, settings, [])
    yield running
    running.stop_all()
    if broker_url.startswith("amqp"):
        asyncio.run(delete_rabbitmq_queues(broker_url, queue))


async def _empty(db: Database) -> None:
    async with db.engine.begin() as connection:
        for table in ("calendar_links", "contests", "users", "jobs"):
            await connection.execute(text(f'DELETE FROM "{table}"'))


async def _seed(deployment: Deployment, google: FakeGoogleServer) -> list[int]:
    db = await open_database(deployment.settings)
    keys = parse_keys(deployment.settings.encryption_keys)
    try:
        await _empty(db)
        await add_contests(db, CONTESTS)
        users = []
        for n in range(USERS):
            user_id = await add_user(db, f"user{n}@example.org", platforms=["codeforces"])
            calendar = f"cal-{user_id}"
            google.fake.calendars[calendar] = {}
            async with db.session() as session, session.begin():
                session.add(
                    CalendarLink(
                        user_id=user_id,
                        kind=LinkKind.GOOGLE,
                        target=calendar,
                        username="",
                        secret_encrypted=keys.encrypt(f"refresh-{n}", "calendar_links.secret"),
                        state=LinkState.ACTIVE,
                        state_reason="",
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
            users.append(user_id)
        return users
    finally:
        await db.dispose()


async def _change_contests(deployment: Deployment, trial: int) -> None:
    """What a refresh might do between trials: move, cancel and restore contests."""
    db = await open_database(deployment.settings, migrate=False)
    try:
        moved = FIRST_START + timedelta(hours=trial + 1)
        end = moved + timedelta(hours=2)
        await change_contest(db, "codeforces", str(2100 + trial), start=moved, end=end)
        status = ContestStatus.CANCELLED if trial % 2 == 0 else ContestStatus.SCHEDULED
        await change_contest(db, "codeforces", "2123", status=status)
    finally:
        await db.dispose()


async def _desired(deployment: Deployment) -> dict[tuple[str, str], str]:
    db = await open_database(deployment.settings, migrate=False)
    try:
        async with db.session() as session:
            rows = await session.execute(
                text("SELECT platform, key, start FROM contests WHERE status = 'scheduled'")
            )
            return {(r.platform, r.key): r.start.strftime("%Y-%m-%dT%H:%M:%SZ") for r in rows}
    finally:
        await db.dispose()


def _calendar(google: FakeGoogleServer, user_id: int) -> list[tuple[tuple[str, str], str]]:
    shown = []
    for event in google.fake.live_events(f"cal-{user_id}").values():
        private = event["extendedProperties"]["private"]
        shown.append(((private["platform"], private["key"]), event["start"]["dateTime"]))
    return shown


def _all_right(google: FakeGoogleServer, users: list[int], desired: dict[Any, str]) -> bool:
    for user_id in users:
        shown = _calendar(google, user_id)
        if len(shown) != len(desired) or dict(shown) != desired:
            return False
    return True


async def _kick_syncs(deployment: Deployment, users: list[int]) -> None:
    broker = make_broker(deployment.settings)
    await broker.startup()
    try:
        for _ in range(2):  # duplicates, as a fan-out and a "sync now" would make
            for user_id in users:
                await kick(broker, "calendars.sync_user", user_id, False)
    finally:
        await broker.shutdown()


def test_killed_worker_leaves_every_calendar_exact(
    deployment: Deployment, google: FakeGoogleServer
) -> None:
    users = asyncio.run(_seed(deployment, google))
    doomed = deployment.worker()
    deployment.worker()
    deployment.scheduler()  # fires the reconciliation at once (cron every minute)
    for trial in range(TRIALS):
        if trial:
            asyncio.run(_change_contests(deployment, trial))
        google.fake.reset_counters()
        asyncio.run(_kick_syncs(deployment, users))
        # Kill one worker once writes are under way: its syncs stop mid-batch.
        assert wait_until(lambda: google.fake.writes() > 0, 30)
        kill_hard(doomed)
        doomed = deployment.worker()
        desired = asyncio.run(_desired(deployment))
        assert wait_until(lambda d=desired: _all_right(google, users, d), 60), (
            trial,
            {u: Counter(k for k, _ in _calendar(google, u)) for u in users},
        )
    for user_id in users:
        keys = [key for key, _ in _calendar(google, user_id)]
        assert len(keys) == len(set(keys))  # no duplicates


async def test_several_schedulers_fire_each_occurrence_once(
    redis_url: str, queue_name: str
) -> None:
    """Three schedulers, each with its own Redis connection as separate processes would
    have, enqueue the every-minute reconciliation onto the Redis broker. The clock is
    injected and every tick is explicit, so no minute boundary can fall mid-test."""
    settings = Settings.model_validate(
        {
            "cache_url": redis_url,
            "broker_url": redis_url,
            "queue_name": queue_name,
            "refresh_interval_minutes": 0,
            "reconcile_cron": "* * * * *",
        }
    )
    clock = MutableClock(datetime(2026, 11, 22, 3, 0, 5, tzinfo=UTC))
    target = LazyBroker(make_broker(settings))
    jobs = [
        job
        for job in calendar_tasks.scheduled_jobs(target, settings)
        if job.name.endswith(calendar_tasks.RECONCILE_ALL)
    ]

    async def source() -> list[ScheduledJob]:
        return jobs

    locks = [open_locks(settings.cache_url, settings.queue_name) for _ in range(3)]
    group = [Scheduler(own, clock, source) for own in locks]
    stream = f"{queue_name}:tasks"
    probe = aioredis.Redis.from_url(redis_url, socket_timeout=None)

    async def tick_all() -> int:
        fired = await asyncio.gather(*(scheduler.tick() for scheduler in group))
        return sum(len(claims) for claims in fired)

    try:
        assert await tick_all() == 1
        for _ in range(3):  # later ticks within the same minute, and a restarted scheduler
            clock.advance(timedelta(seconds=10))
            assert await tick_all() == 0
        group.append(Scheduler(locks[0], clock, source))
        assert await tick_all() == 0
        assert await probe.xlen(stream) == 1
        clock.advance(timedelta(seconds=30))  # 03:01:05: the next occurrence
        assert await tick_all() == 1
        assert await tick_all() == 0
        assert await probe.xlen(stream) == 2
    finally:
        for own in locks:
            await own.close()
        await probe.aclose()
        await target.shutdown()

"""One job's error stays that job's: the scheduler logs it, records it for the admin and
keeps firing the others, in a unit tick and in a real `cpsync scheduler` process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
import redis
from sqlalchemy import select

from cpsync.db import Database, open_database
from cpsync.jobs import Job
from cpsync.locks import MemoryLocks
from cpsync.scheduler import JobFault, ScheduledJob, Scheduler
from cpsync.settings import Settings
from cpsync.students.models import StudentSettings
from tests.conftest import REPO_ROOT
from tests.recordings import MutableClock
from tests.students.support import add_coach, add_student
from tests.waiting import wait_until

NEVER = "0 3 30 2 *"
EVERY_MINUTE = "* * * * *"  # always due within the grace period, whatever the wall clock


async def test_a_job_whose_schedule_fails_is_reported_once_and_skipped() -> None:
    clock = MutableClock(datetime(2026, 11, 22, 3, 0, 5, tzinfo=UTC))
    fired: list[str] = []
    faults: list[JobFault] = []

    async def count() -> None:
        fired.append("ok")

    async def record(fault: JobFault) -> None:
        faults.append(fault)

    async def jobs() -> list[ScheduledJob]:
        return [
            ScheduledJob("never", count, cron=NEVER),
            ScheduledJob("ok", count, cron="0 3 * * *"),
        ]

    scheduler = Scheduler(MemoryLocks(), clock, jobs, on_fault=record)
    assert await scheduler.tick() == ["fire:ok:2026-11-22T03:00:00+00:00"]
    clock.advance(timedelta(days=1))
    assert await scheduler.tick() == ["fire:ok:2026-11-23T03:00:00+00:00"]
    assert fired == ["ok", "ok"]
    assert [(f.job, f.stage) for f in faults] == [("never", "schedule")]
    assert faults[0].message == f"cron {NEVER}: This schedule never runs: February has no 30th."


async def test_a_failing_fault_recorder_stops_nothing() -> None:
    clock = MutableClock(datetime(2026, 11, 22, 3, 0, tzinfo=UTC))

    async def broken() -> None:
        raise RuntimeError("upstream down")

    async def recorder_down(_fault: JobFault) -> None:
        raise OSError("database down")

    async def jobs() -> list[ScheduledJob]:
        return [ScheduledJob("broken", broken, every=timedelta(hours=1))]

    scheduler = Scheduler(MemoryLocks(), clock, jobs, on_fault=recorder_down)
    assert len(await scheduler.tick()) == 1


# ---------------------------------------------------------------- a real process


class Lines:
    """A process's stderr, read on a thread, so the test can wait for a line."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._stream = stream
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            with self._changed:
                self.lines.append(raw.decode(errors="replace"))
                self._changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: any(text in line for line in self.lines), timeout)

    def close(self) -> None:
        """After the process ended: the reader has seen the end of the stream."""
        self._thread.join(timeout=10)
        self._stream.close()


def kicked(client: redis.Redis, stream: str) -> list[tuple[str, list[object]]]:
    """(task name, args) of every message the scheduler enqueued."""
    found = []
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(stream)  # type: ignore[assignment]
    for _id, fields in entries:
        message = json.loads(fields[b"data"])
        found.append((message["task_name"], message["args"]))
    return found


async def seed(db: Database, handle: str, cron: str) -> int:
    coach = await add_coach(db, f"{handle}@example.com")
    await add_student(db, coach, handle, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    async with db.session() as session, session.begin():
        session.add(StudentSettings(coach_id=coach, sync_cron=cron, updated_at=datetime.now(UTC)))
    return coach


async def seeded(settings: Settings, *coaches: tuple[str, str]) -> list[int]:
    db = await open_database(settings)
    try:
        return [await seed(db, handle, cron) for handle, cron in coaches]
    finally:
        await db.dispose()


async def recorded_faults(settings: Settings) -> list[str]:
    db = await open_database(settings)
    try:
        async with db.session() as session:
            query = select(Job.summary).where(Job.kind == "scheduler", Job.state == "failed")
            return list(await session.scalars(query))
    finally:
        await db.dispose()


@pytest.fixture
def scheduler_env(tmp_path: Path, redis_url: str, queue_name: str) -> Iterator[dict[str, str]]:
    yield dict(
        os.environ,
        CPSYNC_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        CPSYNC_DATA_DIR=str(tmp_path),
        CPSYNC_CACHE_URL="memory://",  # one scheduler: its locks may live in the process
        CPSYNC_BROKER_URL=redis_url,
        CPSYNC_QUEUE_NAME=queue_name,
        CPSYNC_REFRESH_INTERVAL_MINUTES="5",  # due at once, whatever the wall clock
    )
    redis.Redis.from_url(redis_url).delete(f"{queue_name}:tasks")


def test_scheduler_process_survives_a_stored_cron_that_never_runs(
    scheduler_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    settings = Settings.model_validate(
        {
            "database_url": scheduler_env["CPSYNC_DATABASE_URL"],
            "data_dir": scheduler_env["CPSYNC_DATA_DIR"],
        }
    )
    # The broken coach comes first, so on every tick its job fails before the next one's.
    broken, fine = asyncio.run(seeded(settings, ("broken", NEVER), ("fine", EVERY_MINUTE)))
    process = subprocess.Popen(
        [sys.executable, "-c", "from cpsync.cli import app; app()", "scheduler"],
        cwd=REPO_ROOT,
        env=scheduler_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stderr is not None
    log = Lines(process.stderr)
    client = redis.Redis.from_url(redis_url)
    stream = f"{queue_name}:tasks"
    try:
        assert log.wait_for(f"scheduler.job.failed job=students.sync:{broken} stage=schedule", 60)
        assert wait_until(
            lambda: ("students.sync", [fine, None, "schedule"]) in kicked(client, stream), 60
        )
        assert ("contests.refresh", []) in [(name, args) for name, args in kicked(client, stream)]
        summaries = asyncio.run(recorded_faults(settings))
        assert len(summaries) == 1
        assert f"students.sync:{broken} skipped" in summaries[0]
        assert "February has no 30th" in summaries[0]

        # The loop goes on: a coach added now is picked up on a later tick.
        (later,) = asyncio.run(seeded(settings, ("later", EVERY_MINUTE)))
        assert wait_until(
            lambda: ("students.sync", [later, None, "schedule"]) in kicked(client, stream), 60
        )
        assert process.poll() is None
        assert not [name for name, args in kicked(client, stream) if args[:1] == [broken]]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
        process.wait(timeout=10)
        log.close()
        client.close()


def test_a_reconcile_cron_that_never_runs_is_refused_at_start(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cpsync.cli import app

    env = {"CPSYNC_RECONCILE_CRON": NEVER, "CPSYNC_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["scheduler"], env=env)
    assert result.exit_code == 2  # the CLI's exit code for bad configuration
    assert (
        "invalid configuration: CPSYNC_RECONCILE_CRON: '0 3 30 2 *': "
        "This schedule never runs: February has no 30th." in result.output
    )

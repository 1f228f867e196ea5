"""A dependency outage (Redis, PostgreSQL, the broker) never ends the scheduler: every step
of a tick backs off and resumes, the outage is logged once, and no occurrence is lost.

In a unit loop (injected clock and sleep, a real Redis of the test's own killed and
started again), and in a real `cpsync scheduler` process whose Redis or PostgreSQL is
away when it starts and again while it runs (issue 14 item 7: a 15 s Redis crash, a 19 s
PostgreSQL stop; a few seconds prove the same code path).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy.exc import IntegrityError

from cpsync.locks import MemoryLocks, RedisLocks
from cpsync.queue import QueueUnavailableError
from cpsync.scheduler import JobFault, ScheduledJob, Scheduler, StepFailedError
from tests.conftest import REPO_ROOT
from tests.recordings import MutableClock
from tests.services import own_postgres, own_redis
from tests.test_scheduler_faults import Lines, kicked, wait_until

START = datetime(2026, 11, 22, 3, 0, 5, tzinfo=UTC)
UNAVAILABLE = "scheduler.dependency.unavailable"
RECOVERED = "scheduler.dependency.recovered"
# The outage being simulated lasts this long; the test waits on log lines and
# enqueued tasks, never on this.
OUTAGE_SECONDS = 4.0


class Stop(Exception):
    """Ends a loop the test drives through its injected sleep."""


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(event)]


async def test_a_redis_outage_backs_off_logs_once_and_fires_the_missed_occurrence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = MutableClock(START)
    fired: list[str] = []

    async def refresh() -> None:
        fired.append("refresh")

    async def jobs() -> list[ScheduledJob]:
        return [ScheduledJob("refresh", refresh, every=timedelta(hours=1))]

    delays: list[float] = []
    with own_redis() as server:

        async def sleep(seconds: float) -> None:
            delays.append(seconds)
            clock.advance(timedelta(seconds=seconds))
            if len(delays) == 6:
                server.start()
            if len(delays) == 8:
                raise Stop

        locks = RedisLocks(server.url, prefix="outage:lock:")
        scheduler = Scheduler(
            locks, clock, jobs, tick_seconds=5, backoff_max_seconds=30, sleep=sleep
        )
        server.kill()  # Redis (the locks) is away from the first tick on
        caplog.set_level(logging.WARNING, logger="cpsync.scheduler")
        try:
            with pytest.raises(Stop):
                await scheduler.run_forever()
        finally:
            await locks.close()
    # Doubling from one tick up to the cap while Redis is away, then one tick again.
    assert delays == [5, 10, 20, 30, 30, 30, 5, 5]
    # The occurrence due during the outage (within the grace period) fired, once.
    assert fired == ["refresh"]
    (unavailable,) = records(caplog, UNAVAILABLE)
    assert "step=claim" in unavailable
    assert "ConnectionError" in unavailable
    assert len(records(caplog, RECOVERED)) == 1


async def test_an_occurrence_the_broker_could_not_take_fires_when_it_is_back() -> None:
    clock = MutableClock(START)
    attempts: list[str] = []

    async def refresh() -> None:
        attempts.append("kick")
        if len(attempts) <= 2:
            raise QueueUnavailableError("The task queue is unavailable; try again later.")

    async def jobs() -> list[ScheduledJob]:
        return [ScheduledJob("refresh", refresh, every=timedelta(hours=1))]

    scheduler = Scheduler(MemoryLocks(), clock, jobs)
    for _ in range(2):
        with pytest.raises(StepFailedError) as failure:
            await scheduler.tick()
        assert failure.value.step == "fire"
        clock.advance(timedelta(seconds=30))
    assert await scheduler.tick() == ["fire:refresh:2026-11-22T03:00:00+00:00"]
    assert await scheduler.tick() == []  # taken by now: never enqueued twice
    assert attempts == ["kick", "kick", "kick"]


async def test_a_statement_the_database_refuses_is_the_job_s_fault_not_an_outage() -> None:
    clock = MutableClock(START)
    fired: list[str] = []
    faults: list[JobFault] = []

    async def prune() -> None:
        raise IntegrityError("DELETE FROM sessions", {}, ValueError("a constraint"))

    async def refresh() -> None:
        fired.append("refresh")

    async def record(fault: JobFault) -> None:
        faults.append(fault)

    async def jobs() -> list[ScheduledJob]:
        hourly = timedelta(hours=1)
        return [
            ScheduledJob("prune", prune, every=hourly),
            ScheduledJob("ok", refresh, every=hourly),
        ]

    scheduler = Scheduler(MemoryLocks(), clock, jobs, on_fault=record)
    assert len(await scheduler.tick()) == 2
    assert fired == ["refresh"]
    assert [(fault.job, fault.stage) for fault in faults] == [("prune", "fire")]


async def test_a_stalled_job_source_counts_as_an_outage() -> None:
    stalled = asyncio.Event()

    async def jobs() -> list[ScheduledJob]:
        await stalled.wait()  # a database that accepted the connection and went silent
        return []

    scheduler = Scheduler(MemoryLocks(), MutableClock(START), jobs, step_timeout_seconds=0.05)
    with pytest.raises(StepFailedError) as failure:
        await scheduler.tick()
    assert failure.value.step == "jobs"
    assert isinstance(failure.value.error, TimeoutError)


# ---------------------------------------------------------------- a real process


@contextmanager
def scheduler_process(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], Lines]]:
    process = subprocess.Popen(
        [sys.executable, "-c", "from cpsync.cli import app; app()", "scheduler"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stderr is not None
    log = Lines(process.stderr)
    try:
        yield process, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
        process.wait(timeout=10)
        log.close()


def trial_env(tmp_path: Path, database_url: str, cache_url: str, broker_url: str) -> dict[str, str]:
    return dict(
        os.environ,
        CPSYNC_DATABASE_URL=database_url,
        CPSYNC_DATA_DIR=str(tmp_path),
        CPSYNC_CACHE_URL=cache_url,
        CPSYNC_BROKER_URL=broker_url,
        CPSYNC_QUEUE_NAME="trial",
        CPSYNC_REFRESH_INTERVAL_MINUTES="0.05",  # a contest refresh is due every 3 s
        CPSYNC_SCHEDULER_TICK_SECONDS="0.2",
        CPSYNC_SCHEDULER_BACKOFF_MAX_SECONDS="1",
        CPSYNC_HEARTBEAT_SECONDS="0.5",
    )


def count(log: Lines, event: str) -> int:
    return sum(1 for line in list(log.lines) if line.startswith(event))


def refreshes(client: redis.Redis) -> int:
    try:
        return sum(1 for name, _args in kicked(client, "trial:tasks") if name == "contests.refresh")
    except (redis.RedisError, OSError):
        return 0


def until(
    process: subprocess.Popen[bytes], log: Lines, predicate: Callable[[], bool], what: str
) -> None:
    """Wait for `predicate`, failing at once with the log if the scheduler exited."""
    wait_until(lambda: predicate() or process.poll() is not None, 120)
    output = "".join(log.lines)
    assert process.poll() is None, f"the scheduler exited ({process.returncode}):\n{output}"
    assert predicate(), f"no {what} within 120 s:\n{output}"


def alive_after_outage(
    process: subprocess.Popen[bytes], log: Lines, outages: int, client: redis.Redis, after: int
) -> None:
    """The process logged each outage once, came back from each, and fires again: more
    contest refreshes than `after` reach the queue."""
    until(process, log, lambda: count(log, RECOVERED) == outages, "recovery")
    until(process, log, lambda: refreshes(client) > after, "contest refresh enqueued")
    assert count(log, UNAVAILABLE) == outages, "".join(log.lines)


def test_scheduler_process_rides_out_redis_outages(tmp_path: Path) -> None:
    with own_redis() as server:
        server.kill()  # away when the scheduler starts
        env = trial_env(
            tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}", server.url, server.url
        )
        with scheduler_process(env) as (process, log):
            client = redis.Redis.from_url(server.url, socket_timeout=5)
            try:
                until(process, log, lambda: count(log, UNAVAILABLE) == 1, "outage logged")
                server.start()
                alive_after_outage(process, log, 1, client, 0)

                server.kill()  # a crash while it runs; the restarted Redis is empty
                until(process, log, lambda: count(log, UNAVAILABLE) == 2, "outage logged")
                time.sleep(OUTAGE_SECONDS)
                server.start()
                alive_after_outage(process, log, 2, client, 0)
                until(process, log, lambda: scheduler_beats(client), "scheduler heartbeat")
            finally:
                client.close()


def scheduler_beats(client: redis.Redis) -> bool:
    fields: dict[bytes, bytes] = client.hgetall("trial:heartbeats")  # type: ignore[assignment]
    return any(name.startswith(b"scheduler:") for name in fields)


def test_scheduler_process_rides_out_postgresql_outages(tmp_path: Path) -> None:
    with own_redis() as broker, own_postgres() as database:
        database.stop()  # away when the scheduler starts (the schema is not even there)
        env = trial_env(tmp_path, database.url, "memory://", broker.url)
        with scheduler_process(env) as (process, log):
            client = redis.Redis.from_url(broker.url, socket_timeout=5)
            try:
                until(process, log, lambda: count(log, UNAVAILABLE) == 1, "outage logged")
                database.start()
                alive_after_outage(process, log, 1, client, 0)

                database.stop()  # stopped while it runs: no tick can read the schedules
                until(process, log, lambda: count(log, UNAVAILABLE) == 2, "outage logged")
                time.sleep(OUTAGE_SECONDS)
                before = refreshes(client)
                database.start()
                alive_after_outage(process, log, 2, client, before)
                second = [line for line in log.lines if line.startswith(UNAVAILABLE)][1]
                # Met by whichever step reached the database first (the job list, mostly).
                assert "DBAPIError" in second or "Connect call failed" in second, second
            finally:
                client.close()

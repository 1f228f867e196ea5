"""Fault trials (issue 14): real `cpsync worker` and `cpsync scheduler` processes on
Redis streams and on RabbitMQ, a PostgreSQL and a Redis of the trial's own (started on
free ports, killed and started again by PID: `tests.services`), a real Radicale CalDAV
server, Codeforces replayed from recordings and a real SMTP receiver.

1. kill -9 of a worker mid calendar sync: the sync completes on a new worker, the CalDAV
   server holds each contest's event exactly once.
2. kill -9 mid student sync (Codeforces' answer held back): the sync completes after
   redelivery.
3. kill -9 mid reminder sending (the SMTP receiver has the message but has not said 250,
   so it was not delivered): the reminder reaches the student exactly once, also after a
   later sync a day on.
4. Redis killed for 15 s, 5. PostgreSQL stopped for 20 s, while a worker and the
   scheduler run and calendar syncs are kicked before, during and after the outage:
   every accepted task ran, the scheduler is alive and fires again, and the recovery
   time is measured (from the dependency's return to the first successful sync).

Each trial records a row (tasks lost, duplicate events, duplicate emails, jobs not
final, scheduler alive, recovery seconds) before asserting the zeros; the run's
terminal summary prints the table (tests/faults/conftest.py), and writes it to the file
named by `CPSYNC_FAULT_TABLE` when set. To run the trials alone:

    .venv/bin/pytest tests/faults -q

Outage lengths are the trials' inputs, so they are timed; everything else waits on
conditions, with `CPSYNC_FAULT_RECOVERY_TIMEOUT` (default 120 s) as the safety net.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cpsync.accounts.crypto import generate_key_spec
from cpsync.settings import Settings
from tests.conftest import delete_rabbitmq_queues
from tests.radicale_server import radicale_server
from tests.replay import ReplayServer, replay_server
from tests.services import OwnPostgres, OwnRedis, own_postgres, own_redis

from .support import (
    RECOVERY_TIMEOUT,
    ROWS,
    CalendarUser,
    Deployment,
    TrialRow,
    add_calendar_users,
    add_coach_with_student,
    add_contests,
    alive,
    assert_clean,
    backdate_reminder_claims,
    calendar_exact,
    duplicate_events,
    fired_occurrences,
    first_success_after,
    held_smtp_receiver,
    jobs_not_final,
    kick_task,
    kill_hard,
    migrate,
    query,
    serve_codeforces,
    settle_jobs,
    status_requests,
    stored_count,
    student_synced,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.services]

SYNC_USER = "calendars.sync_user"
STUDENTS_SYNC = "students.sync"
START_TIMEOUT = 120.0  # a worker's first task on a loaded machine
# Enough events that a kill lands while the sync is writing them.
KILL_CONTESTS = 40
OUTAGE_CONTESTS = 12
OUTAGE_USERS = 6
REDIS_OUTAGE_SECONDS = 15.0
POSTGRES_OUTAGE_SECONDS = 20.0
# The scheduler fires every minute: its next occurrence after recovery comes within this.
NEXT_FIRE_TIMEOUT = 90.0


@dataclass
class Stack:
    broker: str
    deployment: Deployment
    postgres: OwnPostgres
    redis: OwnRedis
    replay: ReplayServer
    radicale_url: str
    radicale_storage: Path

    @property
    def settings(self) -> Settings:
        return self.deployment.settings


@pytest.fixture(params=["redis", "amqp"])
def stack(request: pytest.FixtureRequest, tmp_path: Path, queue_name: str) -> Iterator[Stack]:
    """A deployment of the trial's own; the broker is its Redis, or the machine's
    RabbitMQ with the trial's own queue (deleted afterwards)."""
    amqp_url: str | None = request.getfixturevalue("amqp_url") if request.param == "amqp" else None
    radicale_folder = tmp_path / "radicale"
    radicale_folder.mkdir()
    with (
        own_postgres() as postgres,
        own_redis() as redis_server,
        replay_server() as replay,
        radicale_server(radicale_folder) as radicale_url,
    ):
        broker_url = amqp_url or redis_server.url
        keys = generate_key_spec("test")
        env = dict(
            os.environ,
            CPSYNC_DATA_DIR=str(tmp_path),
            CPSYNC_DATABASE_URL=postgres.url,
            CPSYNC_CACHE_URL=redis_server.url,
            CPSYNC_BROKER_URL=broker_url,
            CPSYNC_QUEUE_NAME=queue_name,
            # Small retry and redelivery settings, so recovery is quick.
            CPSYNC_QUEUE_REDELIVER_SECONDS="3",
            CPSYNC_QUEUE_RETRY_DELAY_SECONDS="1",
            CPSYNC_QUEUE_MAX_RETRIES="10",
            CPSYNC_CALENDAR_LOCK_TTL_SECONDS="4",
            CPSYNC_STUDENTS_SYNC_LOCK_SECONDS="4",
            CPSYNC_SCHEDULER_TICK_SECONDS="1",
            CPSYNC_SCHEDULER_BACKOFF_MAX_SECONDS="5",
            CPSYNC_SCHEDULER_STEP_TIMEOUT_SECONDS="10",
            CPSYNC_HEARTBEAT_SECONDS="2",
            CPSYNC_HTTP_BACKOFF_SECONDS="0.05",
            CPSYNC_HTTP_MIN_INTERVAL_SECONDS="0",
            CPSYNC_ENCRYPTION_KEYS=keys,
            CPSYNC_SECRET_KEY="a-test-secret-key-that-is-long-enough-0123456789",
            CPSYNC_REFRESH_INTERVAL_MINUTES="0",
            CPSYNC_CODEFORCES_BASE_URL=replay.base_url,
            CPSYNC_CODEFORCES_INTERVAL_SECONDS="0.01",
            CPSYNC_OUTBOUND_ALLOW_PRIVATE="true",  # Radicale listens on loopback
            CPSYNC_SMTP_URL="",
        )
        settings = Settings.model_validate(
            {
                "database_url": postgres.url,
                "cache_url": redis_server.url,
                "broker_url": broker_url,
                "queue_name": queue_name,
                "encryption_keys": keys,
            }
        )
        migrate(settings)
        deployment = Deployment(env, settings, tmp_path)
        try:
            yield Stack(
                request.param,
                deployment,
                postgres,
                redis_server,
                replay,
                radicale_url,
                radicale_folder,
            )
        finally:
            deployment.stop_all()
            if amqp_url is not None:
                asyncio.run(delete_rabbitmq_queues(amqp_url, queue_name))


def record(row: TrialRow) -> None:
    ROWS.append(row)
    assert_clean(row)


# ---------------------------------------------------------------- kill -9 of a worker


def test_worker_killed_mid_calendar_sync(stack: Stack) -> None:
    settings, deployment = stack.settings, stack.deployment
    uids = add_contests(settings, KILL_CONTESTS)
    (user,) = add_calendar_users(settings, stack.radicale_url, stack.radicale_storage, 1)
    scheduler = deployment.scheduler()
    doomed = deployment.worker()
    assert kick_task(settings, SYNC_USER, user.user_id, False)
    assert wait_until(lambda: stored_count(user) > 0, START_TIMEOUT), "the sync never wrote"
    kill_hard(doomed)
    killed_at = time.monotonic()
    written = stored_count(user)
    assert written < len(uids), "the sync finished before the kill: the trial proves nothing"
    deployment.worker()
    done = wait_until(lambda: calendar_exact(user, uids), RECOVERY_TIMEOUT)
    recovery = time.monotonic() - killed_at if done else None
    record(
        TrialRow(
            "kill -9 mid calendar sync",
            stack.broker,
            tasks_lost=0 if done else 1,
            duplicate_events=duplicate_events([user]),
            duplicate_emails=0,
            jobs_not_final=settle_jobs(settings, 30),
            scheduler_alive=alive(scheduler),
            recovery_seconds=recovery,
            note=f"killed after {written}/{len(uids)} events written",
        )
    )


def test_worker_killed_mid_student_sync(stack: Stack) -> None:
    settings, deployment = stack.settings, stack.deployment
    # The first user.status answer is held far longer than the kill takes.
    serve_codeforces(stack.replay, first_status_delay=30)
    coach = add_coach_with_student(settings)
    scheduler = deployment.scheduler()
    doomed = deployment.worker()
    assert kick_task(settings, STUDENTS_SYNC, coach, None, "manual")
    assert wait_until(lambda: status_requests(stack.replay) > 0, START_TIMEOUT)
    kill_hard(doomed)
    killed_at = time.monotonic()
    assert not student_synced(settings)
    deployment.worker()
    done = wait_until(lambda: student_synced(settings), RECOVERY_TIMEOUT)
    recovery = time.monotonic() - killed_at if done else None
    record(
        TrialRow(
            "kill -9 mid student sync",
            stack.broker,
            tasks_lost=0 if done else 1,
            duplicate_events=0,
            duplicate_emails=0,
            jobs_not_final=settle_jobs(settings, 30),
            scheduler_alive=alive(scheduler),
            recovery_seconds=recovery,
            note="killed while Codeforces' user.status answer was on its way",
        )
    )


def test_worker_killed_mid_reminder_sending(stack: Stack) -> None:
    settings, deployment = stack.settings, stack.deployment
    serve_codeforces(stack.replay)
    coach = add_coach_with_student(settings)  # inactive since 2019: one reminder is due
    with held_smtp_receiver() as (inbox, port):
        deployment.env["CPSYNC_SMTP_URL"] = f"smtp://127.0.0.1:{port}?from=coach@cpsync.test"
        inbox.hold = True
        scheduler = deployment.scheduler()
        doomed = deployment.worker()
        assert kick_task(settings, STUDENTS_SYNC, coach, None, "manual")
        # The receiver has the message; the sender waits for 250 and dies waiting.
        assert wait_until(lambda: inbox.held > 0, START_TIMEOUT)
        kill_hard(doomed)
        killed_at = time.monotonic()
        # The sender's connection has ended before the receiver could say 250 (the
        # process that held it, taskiq's child, may outlive the leader by a moment).
        assert wait_until(lambda: inbox.dropped > 0, START_TIMEOUT)
        inbox.release()
        deployment.worker()
        done = wait_until(
            lambda: student_synced(settings) and jobs_not_final(settings) == 0, RECOVERY_TIMEOUT
        )
        recovery = time.monotonic() - killed_at if done else None
        synced, not_final_at_recovery = student_synced(settings), jobs_not_final(settings)
        emails_at_recovery = len(inbox.messages)
        # A day on, the student is still inactive and already reminded: a later sync
        # must not send the reminder whose delivery the dead worker never recorded.
        backdate_reminder_claims(settings, timedelta(days=1))
        runs_before = _done_runs(settings)
        later = kick_task(settings, STUDENTS_SYNC, coach, None, "manual") and wait_until(
            lambda: _done_runs(settings) > runs_before, RECOVERY_TIMEOUT
        )
        emails_lost = 1 - min(1, len(inbox.messages))
        record(
            TrialRow(
                "kill -9 mid reminder sending",
                stack.broker,
                tasks_lost=(0 if synced else 1) + (0 if later else 1) + emails_lost,
                duplicate_events=0,
                duplicate_emails=inbox.duplicates(),
                jobs_not_final=max(not_final_at_recovery, settle_jobs(settings, 30)),
                scheduler_alive=alive(scheduler),
                recovery_seconds=recovery,
                note=(
                    f"emails for the 1 due: {emails_at_recovery} at recovery, "
                    f"{len(inbox.messages)} after a sync a day later (ran: {later})"
                ),
            )
        )


def _done_runs(settings: Settings) -> int:
    return int(query(settings, "SELECT count(*) FROM student_sync_runs WHERE state = 'done'")[0][0])


# ---------------------------------------------------------------- outages


def test_redis_killed_for_15_seconds(stack: Stack) -> None:
    record(_outage_trial(stack, "redis", REDIS_OUTAGE_SECONDS))


def test_postgres_stopped_for_20_seconds(stack: Stack) -> None:
    record(_outage_trial(stack, "postgres", POSTGRES_OUTAGE_SECONDS))


def _outage_trial(stack: Stack, dependency: str, seconds: float) -> TrialRow:
    """Calendar syncs kicked before (in flight at the cut), during and after an outage
    of `dependency`, with one worker and the scheduler running throughout."""
    settings, deployment = stack.settings, stack.deployment
    uids = add_contests(settings, OUTAGE_CONTESTS)
    users = add_calendar_users(settings, stack.radicale_url, stack.radicale_storage, OUTAGE_USERS)
    serve_codeforces(stack.replay)
    add_coach_with_student(settings, sync_cron="* * * * *")  # the scheduler fires each minute
    deployment.worker()
    scheduler = deployment.scheduler()
    assert wait_until(lambda: bool(fired_occurrences(stack.redis.url)), START_TIMEOUT)
    accepted: list[CalendarUser] = []
    refused: list[CalendarUser] = []

    def send(user: CalendarUser) -> None:
        kicked = kick_task(settings, SYNC_USER, user.user_id, False)
        (accepted if kicked else refused).append(user)

    send(users[0])
    send(users[1])
    assert wait_until(lambda: stored_count(users[0]) + stored_count(users[1]) > 0, START_TIMEOUT)
    down_at = time.monotonic()
    if dependency == "redis":
        stack.redis.kill()
    else:
        stack.postgres.stop()
    send(users[2])
    send(users[3])
    time.sleep(max(0.0, seconds - (time.monotonic() - down_at)))  # the outage's length
    if dependency == "redis":
        stack.redis.start()
    else:
        stack.postgres.start()
    recovered_at = datetime.now(UTC)
    claimed_before = fired_occurrences(stack.redis.url) or set()
    send(users[4])
    send(users[5])
    wait_until(lambda: all(calendar_exact(u, uids) for u in accepted), RECOVERY_TIMEOUT)
    lost = sum(1 for user in accepted if not calendar_exact(user, uids))
    fires_again = wait_until(
        lambda: bool((fired_occurrences(stack.redis.url) or set()) - claimed_before),
        NEXT_FIRE_TIMEOUT,
    )
    name = "Redis killed 15 s" if dependency == "redis" else "PostgreSQL stopped 20 s"
    return TrialRow(
        name,
        stack.broker,
        tasks_lost=lost,
        duplicate_events=duplicate_events(users),
        duplicate_emails=0,
        jobs_not_final=settle_jobs(settings, 30),
        scheduler_alive=alive(scheduler) and fires_again,
        recovery_seconds=first_success_after(settings, recovered_at),
        note=(
            f"{len(accepted)} syncs accepted, {len(refused)} refused while down; "
            f"scheduler process {'up' if alive(scheduler) else 'dead'}, "
            f"fired after recovery: {fires_again}"
        ),
    )

"""Inactivity emails exactly once, also when the sender dies mid-run.

The reminders go through a real SMTP receiver (aiosmtpd). A "crash" is an exception no
code in cpsync catches, raised as the mailer is about to send: like kill -9, nothing
after it runs. The clock is injected; the claim lease is measured on it. Codeforces is
simulated at the HTTP edge where a whole sync run is involved.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cpsync.cache import MemoryCache
from cpsync.db import Database
from cpsync.http import HttpClient
from cpsync.locks import MemoryLocks
from cpsync.notify.email import Email, Mailer, SmtpConfig, SmtpMailer
from cpsync.settings import Settings
from cpsync.students.codeforces_client import CodeforcesClient, CodeforcesClientConfig
from cpsync.students.reminders import ReminderConfig, ReminderService
from cpsync.students.runtime import sync_scope
from cpsync.students.sync import StudentSyncService
from tests.recordings import MutableClock
from tests.smtp_receiver import Inbox, smtp_receiver

from .simulated_codeforces import SimulatedCodeforces, SimUser
from .support import SIM_BASE, add_coach, add_student, no_sleep

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=15)
HANDLES = [f"quiet{n}" for n in range(6)]


class WorkerKilledError(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing on the way out handles it."""


class DyingMailer:
    """Delivers through `mailer` until its `dies_on`-th send, where the process "dies"."""

    def __init__(self, mailer: Mailer, dies_on: int) -> None:
        self._mailer = mailer
        self._dies_on = dies_on
        self._sends = 0

    async def send(self, email: Email) -> None:
        self._sends += 1
        if self._sends == self._dies_on:
            raise WorkerKilledError
        await self._mailer.send(email)


class HeldMailer:
    """Delivers through `mailer` once the test lets it: a sender still at work."""

    def __init__(self, mailer: Mailer) -> None:
        self._mailer = mailer
        self.sending = asyncio.Event()
        self.go_ahead = asyncio.Event()

    async def send(self, email: Email) -> None:
        self.sending.set()
        await self.go_ahead.wait()
        await self._mailer.send(email)


@pytest.fixture
def receiver() -> Iterator[tuple[Inbox, SmtpMailer]]:
    with smtp_receiver() as (inbox, port):
        yield inbox, SmtpMailer(SmtpConfig.from_url(f"smtp://127.0.0.1:{port}"))


def received(inbox: Inbox) -> Counter[str]:
    return Counter(str(message["To"]) for message in inbox.messages)


async def quiet_students(database: Database, coach: int | None = None) -> list[int]:
    """Six students added a month ago with no submission: all due a first reminder."""
    coach = coach if coach is not None else await add_coach(database)
    added = NOW - timedelta(days=30)
    return [await add_student(database, coach, handle, created_at=added) for handle in HANDLES]


def service(database: Database, mailer: Mailer, clock: MutableClock) -> ReminderService:
    return ReminderService(database, mailer, clock, ReminderConfig(claim_lease=LEASE))


async def test_a_crash_mid_sending_holds_back_only_the_reminder_being_sent(
    database: Database, receiver: tuple[Inbox, SmtpMailer]
) -> None:
    inbox, smtp = receiver
    students = await quiet_students(database)
    clock = MutableClock(NOW)
    with pytest.raises(WorkerKilledError):
        await service(database, DyingMailer(smtp, dies_on=2), clock).remind(students)
    assert received(inbox) == {"quiet0@example.com": 1}

    # The next run, at once: everyone but the one whose sender died; nothing twice.
    counts = await service(database, smtp, clock).remind(students)
    assert counts.sent == 4
    assert received(inbox) == Counter({f"{h}@example.com": 1 for h in HANDLES if h != "quiet1"})

    # Within the lease the dead sender's claim is still its own.
    clock.advance(LEASE - timedelta(seconds=1))
    assert (await service(database, smtp, clock).remind(students)).sent == 0

    clock.advance(timedelta(seconds=2))
    assert (await service(database, smtp, clock).remind(students)).sent == 1
    assert received(inbox) == Counter({f"{h}@example.com": 1 for h in HANDLES})
    assert (await service(database, smtp, clock).remind(students)).sent == 0
    assert sum(received(inbox).values()) == len(HANDLES)


async def test_a_reclaimed_reminder_is_sent_by_one_run_only(
    database: Database, receiver: tuple[Inbox, SmtpMailer]
) -> None:
    """Two runs after the lease ran out: the first takes the dead sender's claim and is
    still sending when the second looks; the second must leave it alone."""
    inbox, smtp = receiver
    students = await quiet_students(database)
    clock = MutableClock(NOW)
    with pytest.raises(WorkerKilledError):
        await service(database, DyingMailer(smtp, dies_on=1), clock).remind(students[:1])
    assert received(inbox) == {}

    clock.advance(LEASE + timedelta(minutes=1))
    held = HeldMailer(smtp)
    first = asyncio.create_task(service(database, held, clock).remind(students[:1]))
    await asyncio.wait_for(held.sending.wait(), 30)
    second = await service(database, smtp, clock).remind(students[:1])
    held.go_ahead.set()
    assert (await asyncio.wait_for(first, 30)).sent == 1
    assert second.sent == 0
    assert received(inbox) == {"quiet0@example.com": 1}


async def sync_run(
    database: Database, mailer: Mailer, clock: MutableClock, coach: int, scope: str
) -> None:
    """One whole sync run of the coach's students, as the `students.sync` task makes it
    while holding the lock of `scope`; its own locks, as a process of its own."""
    sim = SimulatedCodeforces([SimUser(h, registered=0, last_online=0) for h in HANDLES], [])
    settings = Settings(_env_file=None, http_max_retries=0, http_min_interval_seconds=0)
    async with HttpClient(settings, transport=sim.transport()) as http:
        client = CodeforcesClient(http, CodeforcesClientConfig(base_url=SIM_BASE), sleep=no_sleep)
        sync = StudentSyncService(
            database,
            client,
            MemoryCache(),
            MemoryLocks(),
            clock,
            after_sync=service(database, mailer, clock),
            sleep=no_sleep,
        )
        await sync.sync(coach_id=coach, trigger="queue", scope=scope)


async def test_the_run_adopting_a_dead_run_sends_its_pending_reminder_at_once(
    database: Database, receiver: tuple[Inbox, SmtpMailer]
) -> None:
    """The task delivered again after its worker died runs well within the claim's
    lease: the claim the dead run left pending is its to send, once."""
    inbox, smtp = receiver
    coach = await add_coach(database)
    await quiet_students(database, coach)
    scope = sync_scope(coach, None)
    clock = MutableClock(NOW)
    with pytest.raises(WorkerKilledError):
        await sync_run(database, DyingMailer(smtp, dies_on=2), clock, coach, scope)
    assert received(inbox) == {"quiet0@example.com": 1}

    clock.advance(timedelta(minutes=1))
    await sync_run(database, smtp, clock, coach, scope)
    everyone_once = Counter({f"{h}@example.com": 1 for h in HANDLES})
    assert received(inbox) == everyone_once

    # Nothing is left for a later run of the same scope, nor for one past the lease.
    await sync_run(database, smtp, clock, coach, scope)
    clock.advance(LEASE + timedelta(minutes=1))
    await sync_run(database, smtp, clock, coach, scope)
    assert received(inbox) == everyone_once

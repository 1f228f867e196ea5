"""The sync end to end: simulated Codeforces → client → planner → database → reminders."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from cpsync.cache import MemoryCache
from cpsync.db import Database
from cpsync.locks import MemoryLocks
from cpsync.students.models import (
    ReminderAttempt,
    Student,
    StudentRating,
    StudentSubmission,
    StudentSyncRun,
)
from cpsync.students.sync import HANDLE_NOT_FOUND
from tests.recordings import MutableClock

from .simulated_codeforces import (
    IdSource,
    SimulatedCodeforces,
    add_activity,
    catalogue,
    generate_user,
    unix,
)
from .support import RecordingMailer, add_coach, add_student, sync_service

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def world() -> tuple[SimulatedCodeforces, random.Random, IdSource]:
    rng = random.Random(7)
    ids = IdSource()
    problems = catalogue(60)
    sim = SimulatedCodeforces(problems=problems)
    for handle, count in (("alice", 300), ("Bob_2", 120)):
        sim.add(
            generate_user(rng, ids, handle, submissions=count, now=unix(NOW), problems=problems)
        )
    return sim, rng, ids


async def count(db: Database, model: type, **where: object) -> int:
    async with db.session() as session:
        statement = select(func.count()).select_from(model)
        for name, value in where.items():
            statement = statement.where(getattr(model, name) == value)
        return int(await session.scalar(statement) or 0)


async def student(db: Database, student_id: int) -> Student:
    async with db.session() as session:
        found = await session.get(Student, student_id)
        assert found is not None
        return found


async def test_first_then_daily_sync_spends_only_the_planned_calls(database, world) -> None:
    sim, rng, ids = world
    coach = await add_coach(database)
    alice = await add_student(database, coach, "Alice", created_at=NOW - timedelta(days=30))
    bob = await add_student(database, coach, "bob_2", created_at=NOW - timedelta(days=30))
    ghost = await add_student(database, coach, "no_such_user", created_at=NOW)
    cache = MemoryCache()
    async with sync_service(database, sim, MutableClock(NOW), cache=cache) as service:
        report = await service.sync(coach_id=coach, trigger="manual")
    # catalogue + user.info (twice: the unknown handle fails the first batch) + 2x(status, rating)
    assert dict(sim.calls) == {
        "problemset.problems": 1,
        "user.info": 2,
        "user.status": 2,
        "user.rating": 2,
    }
    assert report.state == "done"
    assert report.counts.synced == 2
    assert report.counts.not_found == 1
    assert await count(database, StudentSubmission, student_id=alice) == 300
    assert await count(database, StudentSubmission, student_id=bob) == 120
    assert await count(database, StudentRating, student_id=alice) == 7
    stored = await student(database, alice)
    assert stored.handle == "alice"  # Codeforces' spelling wins
    assert stored.last_synced_at == NOW
    assert stored.rating == sim.users["alice"].rating
    assert (await student(database, ghost)).last_sync_error == HANDLE_NOT_FOUND
    assert (await student(database, ghost)).last_synced_at is None

    # A day later: Alice submitted 3 times, Bob was not online.
    later = NOW + timedelta(days=1)
    add_activity(rng, ids, sim.users["alice"], sim.problems, unix(later) - 600, 3)
    sim.calls.clear()
    async with sync_service(database, sim, MutableClock(later), cache=cache) as service:
        report = await service.sync(coach_id=coach, trigger="cron")
    assert dict(sim.calls) == {"user.info": 2, "user.status": 1}
    assert report.counts.new_submissions == 3
    assert await count(database, StudentSubmission, student_id=alice) == 303
    assert (await student(database, alice)).last_synced_at == later
    # Bob was not online: no user.status, yet he was synced, and "last synced" says so.
    assert (await student(database, bob)).last_synced_at == later
    async with database.session() as session:
        runs = (await session.scalars(select(StudentSyncRun).order_by(StudentSyncRun.id))).all()
    assert [r.trigger for r in runs] == ["manual", "cron"]
    assert runs[-1].done == runs[-1].total == 2
    assert runs[-1].counts["status_fetched"] == 1


async def test_renamed_handle_is_followed(database, world) -> None:
    sim, _rng, _ids = world
    coach = await add_coach(database)
    alice = await add_student(database, coach, "alice", created_at=NOW)
    async with sync_service(database, sim, MutableClock(NOW)) as service:
        await service.sync(coach_id=coach)
    sim.rename("alice", "alice_the_great")
    async with sync_service(database, sim, MutableClock(NOW + timedelta(days=1))) as service:
        report = await service.sync(coach_id=coach)
    assert report.counts.renamed == 1
    assert (await student(database, alice)).handle == "alice_the_great"
    assert (await student(database, alice)).handle_key == "alice_the_great"


async def test_call_limit_backs_off_and_the_others_continue(database, world) -> None:
    sim, _rng, _ids = world
    coach = await add_coach(database)
    alice = await add_student(database, coach, "alice", created_at=NOW)
    bob = await add_student(database, coach, "Bob_2", created_at=NOW)
    for _ in range(3):  # the client's own retries are exhausted too
        sim.fail_next("user.status", 503, "Call limit exceeded")
    async with sync_service(database, sim, MutableClock(NOW)) as service:
        report = await service.sync(coach_id=coach)
    assert report.state == "partial"
    assert report.counts.errors == 1
    failed = await student(database, alice)
    assert failed.last_synced_at is None  # a failed sync never moves last_synced_at
    assert failed.needs_full_sync
    assert "call limit" in (failed.last_sync_error or "")
    assert (await student(database, bob)).last_synced_at == NOW
    # The next run picks Alice up in full.
    async with sync_service(database, sim, MutableClock(NOW + timedelta(hours=1))) as service:
        await service.sync(coach_id=coach)
    assert await count(database, StudentSubmission, student_id=alice) == 300


async def test_inactive_student_gets_one_reminder_per_streak(database, world) -> None:
    sim, _rng, _ids = world
    coach = await add_coach(database)
    alice = await add_student(database, coach, "alice", created_at=NOW - timedelta(days=60))
    quiet = NOW + timedelta(days=10)  # the generated history ends a day before NOW
    mailer = RecordingMailer()
    for hours in (0, 6, 30):
        async with sync_service(
            database, sim, MutableClock(quiet + timedelta(hours=hours)), mailer=mailer
        ) as service:
            await service.sync(coach_id=coach)
    assert len(mailer.sent) == 1
    email = mailer.sent[0]
    assert email.to == "alice@example.com"
    assert "alice" in email.text
    assert "alice" in email.html
    assert (await student(database, alice)).reminders_sent == 1


async def test_two_overlapping_syncs_send_one_email(database, world) -> None:
    sim, _rng, _ids = world
    coach = await add_coach(database)
    alice = await add_student(database, coach, "alice", created_at=NOW - timedelta(days=60))
    async with sync_service(database, sim, MutableClock(NOW), mailer=RecordingMailer()) as service:
        await service.sync(coach_id=coach)  # stores the history; still active at NOW
    mailer = RecordingMailer()
    later = MutableClock(NOW + timedelta(days=10))
    # Separate lock stores: the two runs do not see each other's student lock, as two
    # deployments sharing only the database would not; the claim must still hold.
    async with (
        sync_service(database, sim, later, mailer=mailer, locks=MemoryLocks()) as one,
        sync_service(database, sim, later, mailer=mailer, locks=MemoryLocks()) as two,
    ):
        await asyncio.gather(one.sync(coach_id=coach), two.sync(coach_id=coach))
    assert len(mailer.sent) == 1
    assert (await student(database, alice)).reminders_sent == 1
    assert await count(database, ReminderAttempt, student_id=alice) == 1


async def test_failed_delivery_is_logged_retried_and_not_counted(database, world) -> None:
    sim, _rng, _ids = world
    coach = await add_coach(database)
    alice = await add_student(database, coach, "alice", created_at=NOW - timedelta(days=60))
    mailer = RecordingMailer(fail_times=1)
    quiet = NOW + timedelta(days=10)
    async with sync_service(database, sim, MutableClock(quiet), mailer=mailer) as service:
        report = await service.sync(coach_id=coach)
    assert report.counts.reminders_failed == 1
    assert (await student(database, alice)).reminders_sent == 0
    async with sync_service(
        database, sim, MutableClock(quiet + timedelta(hours=2)), mailer=mailer
    ) as service:
        report = await service.sync(coach_id=coach)
    assert report.counts.reminders_sent == 1
    assert len(mailer.sent) == 1
    assert (await student(database, alice)).reminders_sent == 1
    assert await count(database, ReminderAttempt, student_id=alice, result="failed") == 1
    assert await count(database, ReminderAttempt, student_id=alice, result="sent") == 1


async def test_reminders_off_sends_nothing(database, world) -> None:
    sim, _rng, _ids = world
    coach = await add_coach(database)
    await add_student(
        database, coach, "alice", created_at=NOW - timedelta(days=60), reminders_enabled=False
    )
    mailer = RecordingMailer()
    async with sync_service(
        database, sim, MutableClock(NOW + timedelta(days=10)), mailer=mailer
    ) as service:
        await service.sync(coach_id=coach)
    assert mailer.sent == []


async def test_repeat_reminders_every_m_days_while_inactive(database, world) -> None:
    from cpsync.students.models import StudentSettings

    sim, _rng, _ids = world
    coach = await add_coach(database)
    alice = await add_student(database, coach, "alice", created_at=NOW - timedelta(days=60))
    async with database.session() as session, session.begin():
        session.add(
            StudentSettings(
                coach_id=coach,
                sync_cron="0 3 * * *",
                timezone="UTC",
                inactive_days=7,
                accepted_only=False,
                repeat_every_days=3,
                updated_at=NOW,
            )
        )
    mailer = RecordingMailer()
    start = NOW + timedelta(days=10)
    for day in (0, 1, 2, 3, 4, 6):  # first at day 0, repeats at day 3 and day 6
        async with sync_service(
            database, sim, MutableClock(start + timedelta(days=day)), mailer=mailer
        ) as service:
            await service.sync(coach_id=coach)
    assert len(mailer.sent) == 3
    assert (await student(database, alice)).reminders_sent == 3


async def test_many_concurrent_reminder_checks_claim_once(database, world) -> None:
    from cpsync.students.reminders import ReminderService

    sim, _rng, _ids = world
    coach = await add_coach(database)
    alice = await add_student(database, coach, "alice", created_at=NOW - timedelta(days=60))
    async with sync_service(database, sim, MutableClock(NOW)) as service:
        await service.sync(coach_id=coach)
    mailer = RecordingMailer()
    later = MutableClock(NOW + timedelta(days=10))
    checks = [ReminderService(database, mailer, later).remind([alice]) for _ in range(6)]
    outcomes = await asyncio.gather(*checks)
    assert len(mailer.sent) == 1
    assert sum(outcome.sent for outcome in outcomes) == 1
    assert (await student(database, alice)).reminders_sent == 1


async def test_a_failed_reminder_is_retried_by_one_run_only(database, world) -> None:
    from cpsync.students.reminders import ReminderService

    sim, _rng, _ids = world
    coach = await add_coach(database)
    alice = await add_student(database, coach, "alice", created_at=NOW - timedelta(days=60))
    async with sync_service(database, sim, MutableClock(NOW)) as service:
        await service.sync(coach_id=coach)
    mailer = RecordingMailer(fail_times=1)
    later = MutableClock(NOW + timedelta(days=10))
    assert (await ReminderService(database, mailer, later).remind([alice])).failed == 1
    retries = [ReminderService(database, mailer, later).remind([alice]) for _ in range(4)]
    outcomes = await asyncio.gather(*retries)
    assert sum(outcome.sent for outcome in outcomes) == 1
    assert len(mailer.sent) == 1
    assert (await student(database, alice)).reminders_sent == 1

"""Inactivity through the real sync: Codeforces (simulated) → sync → reminder email.

A student's inactivity runs from their last submission, even one made before the
coach added them; the date added only stands in for a student with no submission.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from cpsync.db import Database
from tests.recordings import MutableClock

from .simulated_codeforces import IdSource, SimulatedCodeforces, catalogue, generate_user, unix
from .support import RecordingMailer, add_coach, add_student, sync_service

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def codeforces(handle: str, *, submissions: int, history_ends: datetime) -> SimulatedCodeforces:
    problems = catalogue(30)
    sim = SimulatedCodeforces(problems=problems)
    user = generate_user(
        random.Random(11),
        IdSource(),
        handle,
        submissions=submissions,
        # generated submissions stop a day before `now`
        now=unix(history_ends + timedelta(days=1)),
        problems=problems,
    )
    sim.add(user)
    return sim


async def sync_at(
    database: Database, sim: SimulatedCodeforces, coach: int, at: datetime
) -> RecordingMailer:
    mailer = RecordingMailer()
    async with sync_service(database, sim, MutableClock(at), mailer=mailer) as service:
        await service.sync(coach_id=coach, trigger="schedule")
    return mailer


async def test_a_student_added_today_after_ten_quiet_days_is_reminded_at_once(
    database: Database,
) -> None:
    sim = codeforces("quiet", submissions=40, history_ends=NOW - timedelta(days=10))
    last_submission = max(s["creationTimeSeconds"] for s in sim.users["quiet"].submissions)
    assert unix(NOW) - last_submission >= 10 * 86400
    coach = await add_coach(database)
    await add_student(database, coach, "quiet", created_at=NOW)

    mailer = await sync_at(database, sim, coach, NOW)

    assert [email.to for email in mailer.sent] == ["quiet@example.com"]
    last_day = datetime.fromtimestamp(last_submission, UTC).date().isoformat()
    assert last_day in mailer.sent[0].text


async def test_a_student_without_any_submission_counts_from_the_day_added(
    database: Database,
) -> None:
    sim = codeforces("newcomer", submissions=0, history_ends=NOW)
    coach = await add_coach(database)
    await add_student(database, coach, "newcomer", created_at=NOW)

    assert (await sync_at(database, sim, coach, NOW + timedelta(days=6, hours=23))).sent == []
    reminded = await sync_at(database, sim, coach, NOW + timedelta(days=7))
    assert [email.to for email in reminded.sent] == ["newcomer@example.com"]
